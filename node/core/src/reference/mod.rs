//! Built-in reference data: Cameroon's administrative areas and the service taxonomy.
//!
//! Both ship inside the binary so that every node validates codes the same way, offline.

pub mod areas;
pub mod languages;
pub mod taxonomy;

/// A language for labels shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// French.
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The English or the French of a message, as this language wants.
    pub fn pick<T>(self, en: T, fr: T) -> T {
        match self {
            Self::En => en,
            Self::Fr => fr,
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fr" => Ok(Self::Fr),
            "en" => Ok(Self::En),
            other => Err(format!("language {other:?} is not one of: fr, en")),
        }
    }
}
