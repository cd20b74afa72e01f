//! The built-in service taxonomy: the three reintegration dimensions and the IOM
//! reintegration-plan categories, with French and English labels.
//!
//! Codes are stable ASCII identifiers; they are what documents store. Labels are for people.

use serde::{Deserialize, Serialize};

use super::Lang;

/// Version of this taxonomy; the network charter will pin it.
pub const TAXONOMY_VERSION: &str = "iom-reintegration-2024.1";

/// A dimension of reintegration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Economic: training, jobs, income, business.
    Economic,
    /// Social: health, housing, education, legal, protection.
    Social,
    /// Psychosocial: counselling, mental health, family and community activities.
    Psychosocial,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 3] = [Self::Economic, Self::Social, Self::Psychosocial];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Economic => "economic",
            Self::Social => "social",
            Self::Psychosocial => "psychosocial",
        }
    }

    /// The label in `lang`.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Economic, Lang::Fr) => "Économique",
            (Self::Economic, Lang::En) => "Economic",
            (Self::Social, Lang::Fr) => "Sociale",
            (Self::Social, Lang::En) => "Social",
            (Self::Psychosocial, Lang::Fr) => "Psychosociale",
            (Self::Psychosocial, Lang::En) => "Psychosocial",
        }
    }
}

impl std::fmt::Display for Dimension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.code() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("dimension {s:?} is not one of: economic, social, psychosocial"))
    }
}

/// A category of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Category {
    /// Stable code, e.g. `vocational_training`.
    pub code: &'static str,
    /// The dimension it belongs to.
    pub dimension: Dimension,
    /// French label.
    pub label_fr: &'static str,
    /// English label.
    pub label_en: &'static str,
}

impl Category {
    /// The label in `lang`.
    pub fn label(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Fr => self.label_fr,
            Lang::En => self.label_en,
        }
    }
}

macro_rules! category {
    ($code:literal, $dim:ident, $fr:literal, $en:literal) => {
        Category {
            code: $code,
            dimension: Dimension::$dim,
            label_fr: $fr,
            label_en: $en,
        }
    };
}

/// Every category of the built-in taxonomy.
pub const CATEGORIES: [Category; 22] = [
    category!(
        "income_generating_activity",
        Economic,
        "Activité génératrice de revenus",
        "Income-generating activity"
    ),
    category!(
        "micro_business",
        Economic,
        "Micro-entreprise",
        "Micro-business"
    ),
    category!(
        "collective_project",
        Economic,
        "Projet collectif ou communautaire",
        "Collective or community project"
    ),
    category!(
        "job_placement",
        Economic,
        "Placement en emploi",
        "Job placement"
    ),
    category!(
        "vocational_training",
        Economic,
        "Formation professionnelle",
        "Vocational training"
    ),
    category!(
        "business_support",
        Economic,
        "Appui à l'entreprise",
        "Business support"
    ),
    category!("microfinance", Economic, "Microfinance", "Micro-finance"),
    category!("housing", Social, "Logement", "Housing"),
    category!("medical", Social, "Soins de santé", "Medical care"),
    category!("nutrition", Social, "Nutrition", "Nutrition"),
    category!("education", Social, "Éducation", "Education"),
    category!(
        "skills",
        Social,
        "Développement des compétences",
        "Skills development"
    ),
    category!(
        "legal",
        Social,
        "Assistance juridique et documents",
        "Legal aid and documents"
    ),
    category!(
        "social_protection",
        Social,
        "Protection sociale",
        "Social protection"
    ),
    category!(
        "child_care",
        Social,
        "Garde et protection de l'enfant",
        "Child care"
    ),
    category!("security", Social, "Sécurité", "Security"),
    category!(
        "psychosocial_individual",
        Psychosocial,
        "Soutien psychosocial individuel et familial",
        "Individual and family psychosocial support"
    ),
    category!(
        "psychosocial_community",
        Psychosocial,
        "Activités psychosociales communautaires",
        "Community psychosocial activities"
    ),
    category!(
        "counselling",
        Psychosocial,
        "Conseil et écoute",
        "Counselling"
    ),
    category!(
        "mental_health",
        Psychosocial,
        "Soins de santé mentale",
        "Mental health care"
    ),
    category!(
        "family_mediation",
        Psychosocial,
        "Médiation familiale",
        "Family mediation"
    ),
    category!(
        "peer_support",
        Psychosocial,
        "Groupes de pairs",
        "Peer support groups"
    ),
];

/// The category with this code, if any.
pub fn category(code: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| c.code == code.trim())
}

/// "income_generating_activity, micro_business, …" for error messages.
pub fn category_codes() -> String {
    CATEGORIES
        .iter()
        .map(|c| c.code)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dimension_has_categories_and_codes_are_unique() {
        for d in Dimension::ALL {
            assert!(CATEGORIES.iter().any(|c| c.dimension == d));
        }
        let mut codes: Vec<_> = CATEGORIES.iter().map(|c| c.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CATEGORIES.len());
    }

    #[test]
    fn dimension_parse_names_accepted_values() {
        assert_eq!("Social".parse::<Dimension>().unwrap(), Dimension::Social);
        let err = "cultural".parse::<Dimension>().unwrap_err();
        assert!(err.contains("economic, social, psychosocial"));
    }
}
