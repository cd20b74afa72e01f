//! Safe text: which characters no text field may hold, and how to show text that holds
//! them anyway.
//!
//! Rules:
//! - Refused in every text field, typed here or received in a peer's change: control
//!   characters (C0 but tab and line feed, DEL, C1), bidirectional embeddings, overrides
//!   and isolates, zero-width and invisible formatting characters, the byte-order mark,
//!   interlinear annotations and tag characters. They let a member write into other
//!   members' terminals (escape sequences, a bell) or make a name read as another (a
//!   right-to-left override, an invisible character inside a name).
//! - Line feeds and tabs are allowed only in the long free-text fields ([`MULTILINE`]);
//!   names, codes and identifiers are one line.
//! - [`check_all`] walks any serializable value (a whole organisation record) without
//!   building a copy of it, and names the field at fault.
//! - Output escapes what slipped in anyway (a record stored by an older version):
//!   [`visible`] for people, [`json_safe`] for JSON that stays the same data.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{self, Impossible, Serialize};

/// Fields whose text may hold line feeds and tabs.
pub const MULTILINE: &[&str] = &["description", "eligibility", "schedule", "address", "notes"];

/// Why a character is refused, if it is.
pub fn forbidden(c: char, multiline: bool) -> Option<&'static str> {
    match c {
        '\n' | '\t' if multiline => None,
        '\n' | '\r' | '\t' => Some("a line break or tab (this field is one line)"),
        '\u{0}'..='\u{1f}' | '\u{7f}' => Some("a control character"),
        '\u{80}'..='\u{9f}' => Some("a control character (C1)"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            Some("a bidirectional override or isolate")
        }
        '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{061c}' | '\u{180e}' => {
            Some("an invisible (zero-width or direction) mark")
        }
        '\u{2028}' | '\u{2029}' => Some("a line or paragraph separator"),
        '\u{feff}' => Some("a byte-order mark"),
        '\u{fff9}'..='\u{fffb}' => Some("an interlinear annotation character"),
        '\u{e0000}'..='\u{e007f}' => Some("a tag character"),
        _ => None,
    }
}

/// A refused character in a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}: holds {what} (U+{code:04X}) at character {at}; text may not hold control, bidirectional-override or invisible characters"
)]
pub struct TextError {
    /// The field, as a path (`services.svc-1.name`).
    pub field: String,
    /// The character's code point.
    pub code: u32,
    /// Which kind of character it is.
    pub what: &'static str,
    /// Its position in the text (0 = first character).
    pub at: usize,
}

/// Checks one text field.
pub fn check(field: &str, value: &str, multiline: bool) -> Result<(), TextError> {
    for (at, c) in value.chars().enumerate() {
        if let Some(what) = forbidden(c, multiline) {
            return Err(TextError {
                field: field.to_owned(),
                code: c as u32,
                what,
                at,
            });
        }
    }
    Ok(())
}

/// Checks every string (and map key) inside `value`; long free-text fields
/// ([`MULTILINE`]) may hold line feeds and tabs.
pub fn check_all<T: Serialize + ?Sized>(value: &T) -> Result<(), TextError> {
    match value.serialize(&mut Walker { multiline: false }) {
        Ok(()) => Ok(()),
        Err(Walk::Text(mut e)) => {
            e.field = e.field.trim_start_matches('.').to_owned();
            Err(e)
        }
        Err(Walk::Other(_)) => Ok(()),
    }
}

/// Shows `text` to people with every refused character written out (`\u{1b}`), so that it
/// cannot act on a terminal.
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, |c, out| {
        out.push_str(&format!("\\u{{{:x}}}", c as u32))
    })
}

/// Escapes refused characters in JSON text as `\uXXXX`: the same data for a JSON reader,
/// inert on a terminal. `text` must be JSON (the characters escaped can only occur inside
/// its strings).
pub fn json_safe(text: &str) -> Cow<'_, str> {
    escape(text, |c, out| {
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    })
}

fn escape(text: &str, write: impl Fn(char, &mut String)) -> Cow<'_, str> {
    let bad = |c: char| forbidden(c, true).is_some();
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if bad(c) {
            write(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// How the walk stopped.
#[derive(Debug)]
enum Walk {
    /// A refused character; its path grows as the error goes up.
    Text(TextError),
    /// The value failed to serialize (not this module's concern).
    Other(String),
}

impl fmt::Display for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Walk::Text(e) => e.fmt(f),
            Walk::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Walk {}

impl ser::Error for Walk {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Walk::Other(msg.to_string())
    }
}

impl Walk {
    /// Puts `segment` in front of the path of a text error.
    fn within(self, segment: &str) -> Self {
        match self {
            Walk::Text(mut e) => {
                e.field = format!(".{segment}{}", e.field);
                Walk::Text(e)
            }
            other => other,
        }
    }
}

/// A serializer that reads every string and checks it; it builds nothing.
struct Walker {
    multiline: bool,
}

impl Walker {
    fn text(&self, value: &str) -> Result<(), Walk> {
        check("", value, self.multiline).map_err(Walk::Text)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Walk> {
        let outer = self.multiline;
        self.multiline = MULTILINE.contains(&key);
        let result = value.serialize(&mut *self);
        self.multiline = outer;
        result.map_err(|e| e.within(key))
    }
}

/// Reads a map key as text (keys are ids and codes: one line).
struct KeyText(Option<String>);

macro_rules! key_not_text {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, _: $ty) -> Result<(), Walk> { Ok(()) })*
    };
}

impl ser::Serializer for &mut KeyText {
    type Ok = ();
    type Error = Walk;
    type SerializeSeq = Impossible<(), Walk>;
    type SerializeTuple = Impossible<(), Walk>;
    type SerializeTupleStruct = Impossible<(), Walk>;
    type SerializeTupleVariant = Impossible<(), Walk>;
    type SerializeMap = Impossible<(), Walk>;
    type SerializeStruct = Impossible<(), Walk>;
    type SerializeStructVariant = Impossible<(), Walk>;

    fn serialize_str(self, v: &str) -> Result<(), Walk> {
        check("", v, false).map_err(Walk::Text)?;
        self.0 = Some(v.to_owned());
        Ok(())
    }
    key_not_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_bytes: &[u8]);
    fn serialize_none(self) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Walk> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Walk> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Walk> {
        Err(Walk::Other("a key that is a list".into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Walk> {
        Err(Walk::Other("a key that is a tuple".into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Walk> {
        Err(Walk::Other("a key that is a tuple".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Walk> {
        Err(Walk::Other("a key that is a tuple".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Walk> {
        Err(Walk::Other("a key that is a map".into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Walk> {
        Err(Walk::Other("a key that is a struct".into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Walk> {
        Err(Walk::Other("a key that is a struct".into()))
    }
}

macro_rules! not_text {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, _: $ty) -> Result<(), Walk> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for &'a mut Walker {
    type Ok = ();
    type Error = Walk;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_str(self, v: &str) -> Result<(), Walk> {
        self.text(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Walk> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    not_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_bytes: &[u8]);
    fn serialize_none(self) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Walk> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Walk> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Walk> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Walk> {
        self.field(variant, value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Walk> {
        Ok(Compound::new(self))
    }
}

/// A list, map or struct being walked.
struct Compound<'a> {
    walker: &'a mut Walker,
    index: usize,
    key: Option<String>,
}

impl<'a> Compound<'a> {
    fn new(walker: &'a mut Walker) -> Self {
        Self {
            walker,
            index: 0,
            key: None,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Walk> {
        let at = self.index;
        self.index += 1;
        value
            .serialize(&mut *self.walker)
            .map_err(|e| e.within(&format!("[{at}]")))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Walk> {
        self.element(value)
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Walk> {
        self.element(value)
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Walk> {
        self.element(value)
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Walk> {
        self.element(value)
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Walk> {
        let mut text = KeyText(None);
        key.serialize(&mut text)
            .map_err(|e| e.within(&format!("[key {}]", self.index)))?;
        self.key = text.0;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Walk> {
        self.index += 1;
        match self.key.take() {
            Some(key) => {
                let outer = self.walker.multiline;
                self.walker.multiline = false;
                let result = value.serialize(&mut *self.walker);
                self.walker.multiline = outer;
                result.map_err(|e| e.within(&key))
            }
            None => value.serialize(&mut *self.walker),
        }
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Walk> {
        self.walker.field(key, value)
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Walk;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Walk> {
        self.walker.field(key, value)
    }
    fn end(self) -> Result<(), Walk> {
        Ok(())
    }
}

/// Folds case and the accents of French, so "economique" finds "Économique".
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            'ÿ' => 'y',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    struct Service {
        name: String,
        description: Option<String>,
        languages: Vec<String>,
    }

    #[derive(serde::Serialize)]
    struct Record {
        services: BTreeMap<String, Service>,
    }

    fn record(name: &str, description: &str) -> Record {
        Record {
            services: BTreeMap::from([(
                "svc-1".to_owned(),
                Service {
                    name: name.into(),
                    description: Some(description.into()),
                    languages: vec!["fr".into()],
                },
            )]),
        }
    }

    #[test]
    fn ordinary_text_in_every_script_passes() {
        for text in [
            "Association Retour et Dignité",
            "Ƴiɓɓe ɗe Fulɓe",
            "جمعية العودة",
            "Centre d'écoute — « Espoir » 😊",
        ] {
            assert_eq!(check("name", text, false), Ok(()));
        }
        assert!(check_all(&record("Formation", "Six mois.\nDeux sessions.\tMatin.")).is_ok());
    }

    #[test]
    fn terminal_escapes_overrides_and_invisible_characters_are_refused_with_their_field() {
        for (text, code) in [
            ("Bell\u{7}", 0x7),
            ("\u{1b}[2J\u{1b}[31mFAUX", 0x1b),
            ("Nom\navec retour", 0xa),
            ("abc\u{202e}fdp.exe", 0x202e),
            ("Croix\u{200b}Rouge", 0x200b),
            ("\u{2066}isolé", 0x2066),
            ("C1 \u{9b}31m", 0x9b),
            ("BOM\u{feff}", 0xfeff),
        ] {
            let e = check_all(&record(text, "ok")).expect_err(text);
            assert_eq!(e.field, "services.svc-1.name", "{text:?}");
            assert_eq!(e.code, code);
            assert!(e.to_string().contains("services.svc-1.name"), "{e}");
        }
        let e = check_all(&record("ok", "ligne\u{1b}]0;titre\u{7}")).expect_err("osc");
        assert_eq!(e.field, "services.svc-1.description");
        let mut keyed = record("ok", "ok");
        let service = keyed.services.remove("svc-1").expect("service");
        keyed.services.insert("svc-\u{1b}".into(), service);
        assert!(check_all(&keyed).is_err());
    }

    #[test]
    fn output_escapes_what_slipped_in() {
        assert_eq!(visible("plain"), Cow::Borrowed("plain"));
        assert_eq!(visible("a\u{1b}[31m"), "a\\u{1b}[31m");
        assert_eq!(visible("x\u{202e}y"), "x\\u{202e}y");
        let json = serde_json::to_string(&"a\u{202e}b\u{9b}c").expect("json");
        let safe = json_safe(&json);
        assert_eq!(safe, "\"a\\u202eb\\u009bc\"");
        let back: String = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, "a\u{202e}b\u{9b}c");
    }
}
