//! Reads a hydrated Automerge value (`automerge::hydrate::Value`) straight into Rust types
//! through serde, without building a JSON tree first.
//!
//! Rules:
//! - It reads exactly what the JSON detour read (`serde_json::from_value` of the value
//!   converted to JSON): strings and text as strings, integers, timestamps and counters as
//!   `i64`, unsigned as `u64`, floats, booleans; null, bytes and values of unknown type as
//!   unit (so `Option` fields read `None`). Maps read as maps or structs, lists as
//!   sequences; an enum is a string (a unit variant) or a map of one key (the variant and
//!   its content), as in JSON.
//! - Reading a document's record this way was the costliest part of re-reading a document
//!   (the JSON tree was two thirds of it); the tests check both readings agree.

use std::fmt;

use automerge::ScalarValue;
use automerge::hydrate::Value;
use serde::Deserialize;
use serde::de::{self, IntoDeserializer, Visitor};

/// Why a hydrated value does not read as the type asked for.
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

/// Reads `value` as a `T`.
pub fn from_hydrate<'de, T: Deserialize<'de>>(value: &'de Value) -> Result<T, Error> {
    T::deserialize(Reader(value))
}

/// A serde deserializer over one hydrated value.
struct Reader<'de>(&'de Value);

impl<'de> de::Deserializer<'de> for Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Scalar(scalar) => match scalar {
                ScalarValue::Str(s) => visitor.visit_borrowed_str(s.as_str()),
                ScalarValue::Int(i) | ScalarValue::Timestamp(i) => visitor.visit_i64(*i),
                ScalarValue::Uint(u) => visitor.visit_u64(*u),
                ScalarValue::F64(f) => visitor.visit_f64(*f),
                ScalarValue::Boolean(b) => visitor.visit_bool(*b),
                ScalarValue::Counter(c) => match c.to_string().parse::<i64>() {
                    Ok(i) => visitor.visit_i64(i),
                    Err(_) => visitor.visit_unit(),
                },
                ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } | ScalarValue::Null => {
                    visitor.visit_unit()
                }
            },
            Value::Map(map) => visitor.visit_map(Entries {
                entries: map.iter(),
                value: None,
            }),
            Value::List(list) => visitor.visit_seq(Items(list.iter())),
            Value::Text(text) => visitor.visit_string(String::from(text)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Scalar(ScalarValue::Null | ScalarValue::Bytes(_))
            | Value::Scalar(ScalarValue::Unknown { .. }) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Scalar(ScalarValue::Str(s)) => {
                visitor.visit_enum(de::value::BorrowedStrDeserializer::new(s.as_str()))
            }
            Value::Text(text) => visitor.visit_enum(String::from(text).into_deserializer()),
            Value::Map(map) => {
                let mut entries = map.iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, content)), None) => visitor.visit_enum(Variant {
                        name: variant,
                        content: &content.value,
                    }),
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

struct Entries<'de, I> {
    entries: I,
    value: Option<&'de Value>,
}

impl<'de, I> de::MapAccess<'de> for Entries<'de, I>
where
    I: Iterator<Item = (&'de String, &'de automerge::hydrate::MapValue)>,
{
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(&value.value);
                seed.deserialize(de::value::BorrowedStrDeserializer::new(key.as_str()))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Reader(value)),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }
}

struct Items<I>(I);

impl<'de, I> de::SeqAccess<'de> for Items<I>
where
    I: Iterator<Item = &'de automerge::hydrate::ListValue>,
{
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(item) => seed.deserialize(Reader(&item.value)).map(Some),
            None => Ok(None),
        }
    }
}

/// An enum written as a map of one key: the variant's name and its content.
struct Variant<'de> {
    name: &'de String,
    content: &'de Value,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = Reader<'de>;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Reader<'de>), Error> {
        let name = seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(
            self.name.as_str(),
        ))?;
        Ok((name, Reader(self.content)))
    }
}

impl<'de> de::VariantAccess<'de> for Reader<'de> {
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
    use automerge::ReadDoc;
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

    fn hydrated(json: serde_json::Value) -> Value {
        let mut doc = automerge::AutoCommit::new();
        doc.update_object(&automerge::ROOT, &crate::document::json_to_hydrate(&json))
            .expect("written");
        doc.hydrate(automerge::ROOT, None).expect("hydrate")
    }

    #[test]
    fn reads_what_the_json_detour_read() {
        let sample = Sample {
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
        };
        let mut json = serde_json::to_value(&sample).unwrap();
        json.as_object_mut().unwrap().remove("defaulted");
        let value = hydrated(json);
        let direct: Sample = from_hydrate(&value).expect("reads");
        assert_eq!(direct, sample);
        let via_json: Sample =
            serde_json::from_value(crate::document::hydrate_to_json(&value)).unwrap();
        assert_eq!(direct, via_json);
    }

    #[test]
    fn a_mistyped_value_is_an_error_not_a_panic() {
        let value = hydrated(serde_json::json!({ "name": 5, "count": "three" }));
        let error = from_hydrate::<Sample>(&value).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
    }
}
