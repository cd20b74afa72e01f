//! Reads an Automerge document (or one object of it) straight into Rust types through
//! serde, walking the document's current values in place: no hydrated tree, no JSON tree.
//!
//! Rules:
//! - It reads what the JSON detour read (`serde_json::from_value` of the hydrated document
//!   converted to JSON): strings and text as strings, integers, timestamps and counters as
//!   `i64`, unsigned as `u64`, floats, booleans; null, bytes and values of unknown type as
//!   unit (so `Option` fields read `None`). Maps read as maps or structs, lists as
//!   sequences; an enum is a string (a unit variant) or a map of one key (the variant and
//!   its content), as in JSON. Where a key holds conflicting values, the one Automerge
//!   shows (its winner) is read, as hydrating did.
//! - Re-reading a document after received changes is a large part of applying them
//!   (hydrating the whole document into a tree of owned values, then reading that tree,
//!   was a fifth of the ingest's time); this reads each value once, borrowing strings from
//!   the document where it can. The tests check it reads what the JSON detour read.

use std::borrow::Cow;
use std::fmt;

use automerge::iter::{ListRange, MapRange};
use automerge::{ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef};
use serde::Deserialize;
use serde::de::{self, IntoDeserializer, Visitor};

/// Why a document's value does not read as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Reads the map object `obj` of `doc` (its root: [`automerge::ROOT`]) as a `T`.
pub fn from_object<'de, D: ReadDoc, T: Deserialize<'de>>(
    doc: &'de D,
    obj: ObjId,
) -> Result<T, Error> {
    T::deserialize(Reader {
        doc,
        node: Node::Object(ObjType::Map, obj),
    })
}

/// One value of the document: a scalar, or an object and its id.
enum Node<'de> {
    Scalar(ScalarValueRef<'de>),
    Object(ObjType, ObjId),
}

impl<'de> Node<'de> {
    fn of(value: ValueRef<'de>, id: impl FnOnce() -> ObjId) -> Self {
        match value {
            ValueRef::Scalar(scalar) => Node::Scalar(scalar),
            ValueRef::Object(kind) => Node::Object(kind, id()),
        }
    }
}

/// A serde deserializer over one value of a document.
struct Reader<'de, D> {
    doc: &'de D,
    node: Node<'de>,
}

fn visit_cow_str<'de, V: Visitor<'de>>(s: Cow<'de, str>, visitor: V) -> Result<V::Value, Error> {
    match s {
        Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
        Cow::Owned(s) => visitor.visit_string(s),
    }
}

/// A map key or an enum variant's name, borrowed from the document where it can be.
fn seed_cow_str<'de, S: de::DeserializeSeed<'de>>(
    seed: S,
    s: Cow<'de, str>,
) -> Result<S::Value, Error> {
    match s {
        Cow::Borrowed(s) => seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(s)),
        Cow::Owned(s) => seed.deserialize(de::value::StringDeserializer::<Error>::new(s)),
    }
}

impl<'de, D: ReadDoc> Reader<'de, D> {
    fn text(&self, id: &ObjId) -> Result<String, Error> {
        self.doc
            .text(id)
            .map_err(|e| de::Error::custom(format!("a text that does not read: {e}")))
    }
}

impl<'de, D: ReadDoc> de::Deserializer<'de> for Reader<'de, D> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Scalar(scalar) => match scalar {
                ScalarValueRef::Str(s) => visit_cow_str(s, visitor),
                ScalarValueRef::Int(i) | ScalarValueRef::Timestamp(i) => visitor.visit_i64(i),
                ScalarValueRef::Counter(c) => visitor.visit_i64(c),
                ScalarValueRef::Uint(u) => visitor.visit_u64(u),
                ScalarValueRef::F64(f) => visitor.visit_f64(f),
                ScalarValueRef::Boolean(b) => visitor.visit_bool(b),
                ScalarValueRef::Bytes(_)
                | ScalarValueRef::Unknown { .. }
                | ScalarValueRef::Null => visitor.visit_unit(),
            },
            Node::Object(ObjType::Map | ObjType::Table, id) => visitor.visit_map(Entries {
                doc: self.doc,
                entries: self.doc.map_range(id, ..),
                value: None,
            }),
            Node::Object(ObjType::List, id) => visitor.visit_seq(Items {
                doc: self.doc,
                items: self.doc.list_range(id, ..),
            }),
            Node::Object(ObjType::Text, ref id) => visitor.visit_string(self.text(id)?),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Scalar(
                ScalarValueRef::Null | ScalarValueRef::Bytes(_) | ScalarValueRef::Unknown { .. },
            ) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.node {
            Node::Scalar(ScalarValueRef::Str(Cow::Borrowed(s))) => {
                visitor.visit_enum(de::value::BorrowedStrDeserializer::new(s))
            }
            Node::Scalar(ScalarValueRef::Str(Cow::Owned(s))) => {
                visitor.visit_enum(s.into_deserializer())
            }
            Node::Object(ObjType::Text, ref id) => {
                visitor.visit_enum(self.text(id)?.into_deserializer())
            }
            Node::Object(ObjType::Map | ObjType::Table, id) => {
                let mut entries = self.doc.map_range(id, ..);
                match (entries.next(), entries.next()) {
                    (Some(only), None) => {
                        let content = Node::of(only.value.clone(), || only.id());
                        visitor.visit_enum(Variant {
                            name: only.key,
                            content: Reader {
                                doc: self.doc,
                                node: content,
                            },
                        })
                    }
                    _ => Err(de::Error::invalid_value(
                        de::Unexpected::Map,
                        &"a map with a single key",
                    )),
                }
            }
            _ => Err(de::Error::invalid_type(
                de::Unexpected::Other("a value that is neither a string nor a map"),
                &"an enum",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// A map's entries, read one at a time.
struct Entries<'de, D> {
    doc: &'de D,
    entries: MapRange<'de>,
    value: Option<Node<'de>>,
}

impl<'de, D: ReadDoc> de::MapAccess<'de> for Entries<'de, D> {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(Node::of(entry.value.clone(), || entry.id()));
        seed_cow_str(seed, entry.key).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(node) => seed.deserialize(Reader {
                doc: self.doc,
                node,
            }),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }
}

/// A list's items, read one at a time.
struct Items<'de, D> {
    doc: &'de D,
    items: ListRange<'de>,
}

impl<'de, D: ReadDoc> de::SeqAccess<'de> for Items<'de, D> {
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(item) => seed
                .deserialize(Reader {
                    doc: self.doc,
                    node: Node::of(item.value.clone(), || item.id()),
                })
                .map(Some),
            None => Ok(None),
        }
    }
}

/// An enum written as a map of one key: the variant's name and its content.
struct Variant<'de, D> {
    name: Cow<'de, str>,
    content: Reader<'de, D>,
}

impl<'de, D: ReadDoc> de::EnumAccess<'de> for Variant<'de, D> {
    type Error = Error;
    type Variant = Reader<'de, D>;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Reader<'de, D>), Error> {
        Ok((seed_cow_str(seed, self.name)?, self.content))
    }
}

impl<'de, D: ReadDoc> de::VariantAccess<'de> for Reader<'de, D> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Colour {
        Red,
        Custom { rgb: Vec<u8> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Cost {
        Free,
        Fixed { amount: f64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        count: u32,
        delta: i64,
        ratio: f64,
        maybe: Option<String>,
        absent: Option<u8>,
        flags: Vec<bool>,
        colours: Vec<Colour>,
        cost: Cost,
        other_cost: Cost,
        by_key: BTreeMap<String, u16>,
        #[serde(default)]
        defaulted: Vec<String>,
    }

    fn document(json: serde_json::Value) -> automerge::AutoCommit {
        let mut doc = automerge::AutoCommit::new();
        doc.update_object(&automerge::ROOT, &crate::document::json_to_hydrate(&json))
            .expect("written");
        doc
    }

    fn sample() -> Sample {
        Sample {
            name: "Centre d'écoute".into(),
            count: 3,
            delta: -7,
            ratio: 2.0,
            maybe: Some("oui".into()),
            absent: None,
            flags: vec![true, false],
            colours: vec![Colour::Red, Colour::Custom { rgb: vec![1, 2, 3] }],
            cost: Cost::Free,
            other_cost: Cost::Fixed { amount: 1500.0 },
            by_key: [("a".to_string(), 1), ("b".to_string(), 2)].into(),
            defaulted: Vec::new(),
        }
    }

    #[test]
    fn reads_what_the_json_detour_read() {
        let sample = sample();
        let mut json = serde_json::to_value(&sample).unwrap();
        json.as_object_mut().unwrap().remove("defaulted");
        let mut doc = document(json);
        let direct: Sample = from_object(&doc, automerge::ROOT).expect("reads");
        assert_eq!(direct, sample);
        let hydrated = doc.hydrate(automerge::ROOT, None).expect("hydrate");
        let via_json: Sample =
            serde_json::from_value(crate::document::hydrate_to_json(&hydrated)).unwrap();
        assert_eq!(direct, via_json);
        // After edits (a later write wins; a text object reads as its string).
        doc.put(automerge::ROOT, "name", "Centre d'accueil")
            .unwrap();
        let text = doc
            .put_object(automerge::ROOT, "maybe", ObjType::Text)
            .unwrap();
        doc.splice_text(&text, 0, 0, "peut-être").unwrap();
        let direct: Sample = from_object(&doc, automerge::ROOT).expect("reads");
        assert_eq!(direct.name, "Centre d'accueil");
        assert_eq!(direct.maybe.as_deref(), Some("peut-être"));
    }

    #[test]
    fn a_mistyped_value_is_an_error_not_a_panic() {
        let doc = document(serde_json::json!({ "name": 5, "count": "three" }));
        let error = from_object::<_, Sample>(&doc, automerge::ROOT).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
    }
}
