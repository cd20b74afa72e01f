//! Cameroon's 10 regions and 58 departments, keyed by P-code, with French and English names.
//!
//! Region P-codes are OCHA's (`CM001` Adamaoua … `CM010` Sud-Ouest) with their ISO 3166-2
//! codes. Department P-codes follow the OCHA COD-AB pattern (region code + three digits,
//! numbered in alphabetical order within the region); check them against the current COD-AB
//! release before joining Passerelle exports with other OCHA datasets.

use super::Lang;

/// A region (first-level administrative area).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// OCHA P-code, e.g. `CM005`.
    pub pcode: &'static str,
    /// ISO 3166-2 code, e.g. `CM-LT`.
    pub iso: &'static str,
    /// French name.
    pub name_fr: &'static str,
    /// English name.
    pub name_en: &'static str,
}

/// A department (second-level administrative area).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Department {
    /// P-code, e.g. `CM005004`.
    pub pcode: &'static str,
    /// The region's P-code.
    pub region: &'static str,
    /// French name.
    pub name_fr: &'static str,
    /// English name.
    pub name_en: &'static str,
}

impl Region {
    /// The name in `lang`.
    pub fn name(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Fr => self.name_fr,
            Lang::En => self.name_en,
        }
    }
}

impl Department {
    /// The name in `lang`.
    pub fn name(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Fr => self.name_fr,
            Lang::En => self.name_en,
        }
    }
}

macro_rules! region {
    ($pcode:literal, $iso:literal, $fr:literal, $en:literal) => {
        Region {
            pcode: $pcode,
            iso: $iso,
            name_fr: $fr,
            name_en: $en,
        }
    };
}

macro_rules! dept {
    ($pcode:literal, $region:literal, $fr:literal, $en:literal) => {
        Department {
            pcode: $pcode,
            region: $region,
            name_fr: $fr,
            name_en: $en,
        }
    };
}

/// The ten regions.
pub const REGIONS: [Region; 10] = [
    region!("CM001", "CM-AD", "Adamaoua", "Adamawa"),
    region!("CM002", "CM-CE", "Centre", "Centre"),
    region!("CM003", "CM-ES", "Est", "East"),
    region!("CM004", "CM-EN", "Extrême-Nord", "Far North"),
    region!("CM005", "CM-LT", "Littoral", "Littoral"),
    region!("CM006", "CM-NO", "Nord", "North"),
    region!("CM007", "CM-NW", "Nord-Ouest", "North-West"),
    region!("CM008", "CM-OU", "Ouest", "West"),
    region!("CM009", "CM-SU", "Sud", "South"),
    region!("CM010", "CM-SW", "Sud-Ouest", "South-West"),
];

/// The 58 departments.
pub const DEPARTMENTS: [Department; 58] = [
    dept!("CM001001", "CM001", "Djérem", "Djerem"),
    dept!("CM001002", "CM001", "Faro-et-Déo", "Faro-et-Deo"),
    dept!("CM001003", "CM001", "Mayo-Banyo", "Mayo-Banyo"),
    dept!("CM001004", "CM001", "Mbéré", "Mbere"),
    dept!("CM001005", "CM001", "Vina", "Vina"),
    dept!("CM002001", "CM002", "Haute-Sanaga", "Upper Sanaga"),
    dept!("CM002002", "CM002", "Lekié", "Lekie"),
    dept!("CM002003", "CM002", "Mbam-et-Inoubou", "Mbam-and-Inoubou"),
    dept!("CM002004", "CM002", "Mbam-et-Kim", "Mbam-and-Kim"),
    dept!("CM002005", "CM002", "Méfou-et-Afamba", "Mefou-and-Afamba"),
    dept!("CM002006", "CM002", "Méfou-et-Akono", "Mefou-and-Akono"),
    dept!("CM002007", "CM002", "Mfoundi", "Mfoundi"),
    dept!("CM002008", "CM002", "Nyong-et-Kéllé", "Nyong-and-Kelle"),
    dept!("CM002009", "CM002", "Nyong-et-Mfoumou", "Nyong-and-Mfoumou"),
    dept!("CM002010", "CM002", "Nyong-et-So'o", "Nyong-and-So'o"),
    dept!("CM003001", "CM003", "Boumba-et-Ngoko", "Boumba-and-Ngoko"),
    dept!("CM003002", "CM003", "Haut-Nyong", "Upper Nyong"),
    dept!("CM003003", "CM003", "Kadey", "Kadey"),
    dept!("CM003004", "CM003", "Lom-et-Djérem", "Lom-and-Djerem"),
    dept!("CM004001", "CM004", "Diamaré", "Diamare"),
    dept!("CM004002", "CM004", "Logone-et-Chari", "Logone-and-Chari"),
    dept!("CM004003", "CM004", "Mayo-Danay", "Mayo-Danay"),
    dept!("CM004004", "CM004", "Mayo-Kani", "Mayo-Kani"),
    dept!("CM004005", "CM004", "Mayo-Sava", "Mayo-Sava"),
    dept!("CM004006", "CM004", "Mayo-Tsanaga", "Mayo-Tsanaga"),
    dept!("CM005001", "CM005", "Moungo", "Moungo"),
    dept!("CM005002", "CM005", "Nkam", "Nkam"),
    dept!("CM005003", "CM005", "Sanaga-Maritime", "Sanaga-Maritime"),
    dept!("CM005004", "CM005", "Wouri", "Wouri"),
    dept!("CM006001", "CM006", "Bénoué", "Benue"),
    dept!("CM006002", "CM006", "Faro", "Faro"),
    dept!("CM006003", "CM006", "Mayo-Louti", "Mayo-Louti"),
    dept!("CM006004", "CM006", "Mayo-Rey", "Mayo-Rey"),
    dept!("CM007001", "CM007", "Boyo", "Boyo"),
    dept!("CM007002", "CM007", "Bui", "Bui"),
    dept!("CM007003", "CM007", "Donga-Mantung", "Donga-Mantung"),
    dept!("CM007004", "CM007", "Menchum", "Menchum"),
    dept!("CM007005", "CM007", "Mezam", "Mezam"),
    dept!("CM007006", "CM007", "Momo", "Momo"),
    dept!("CM007007", "CM007", "Ngo-Ketunjia", "Ngo-Ketunjia"),
    dept!("CM008001", "CM008", "Bamboutos", "Bamboutos"),
    dept!("CM008002", "CM008", "Haut-Nkam", "Upper Nkam"),
    dept!("CM008003", "CM008", "Hauts-Plateaux", "Upper Plateaux"),
    dept!("CM008004", "CM008", "Koung-Khi", "Koung-Khi"),
    dept!("CM008005", "CM008", "Menoua", "Menoua"),
    dept!("CM008006", "CM008", "Mifi", "Mifi"),
    dept!("CM008007", "CM008", "Ndé", "Nde"),
    dept!("CM008008", "CM008", "Noun", "Noun"),
    dept!("CM009001", "CM009", "Dja-et-Lobo", "Dja-and-Lobo"),
    dept!("CM009002", "CM009", "Mvila", "Mvila"),
    dept!("CM009003", "CM009", "Océan", "Ocean"),
    dept!("CM009004", "CM009", "Vallée-du-Ntem", "Ntem Valley"),
    dept!("CM010001", "CM010", "Fako", "Fako"),
    dept!("CM010002", "CM010", "Koupé-Manengouba", "Kupe-Muanenguba"),
    dept!("CM010003", "CM010", "Lebialem", "Lebialem"),
    dept!("CM010004", "CM010", "Manyu", "Manyu"),
    dept!("CM010005", "CM010", "Meme", "Meme"),
    dept!("CM010006", "CM010", "Ndian", "Ndian"),
];

/// The region with this P-code (or ISO 3166-2 code), if any.
pub fn region(code: &str) -> Option<&'static Region> {
    let code = code.trim();
    REGIONS
        .iter()
        .find(|r| r.pcode.eq_ignore_ascii_case(code) || r.iso.eq_ignore_ascii_case(code))
}

/// The department with this P-code, if any.
pub fn department(code: &str) -> Option<&'static Department> {
    let code = code.trim();
    DEPARTMENTS
        .iter()
        .find(|d| d.pcode.eq_ignore_ascii_case(code))
}

/// The departments of a region.
pub fn departments_of(region_pcode: &str) -> impl Iterator<Item = &'static Department> + '_ {
    DEPARTMENTS.iter().filter(move |d| d.region == region_pcode)
}

/// "CM001 Adamaoua, CM002 Centre, …" for error messages.
pub fn region_list() -> String {
    REGIONS
        .iter()
        .map(|r| format!("{} {}", r.pcode, r.name_fr))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "CM005001 Moungo, …" for the departments of one region (or all), for error messages.
pub fn department_list(region_pcode: Option<&str>) -> String {
    DEPARTMENTS
        .iter()
        .filter(|d| region_pcode.is_none_or(|r| d.region == r))
        .map(|d| format!("{} {}", d.pcode, d.name_fr))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_regions_and_fifty_eight_departments() {
        assert_eq!(REGIONS.len(), 10);
        assert_eq!(DEPARTMENTS.len(), 58);
        for d in DEPARTMENTS {
            assert!(region(d.region).is_some(), "{}", d.pcode);
            assert!(d.pcode.starts_with(d.region), "{}", d.pcode);
        }
        let mut codes: Vec<_> = DEPARTMENTS.iter().map(|d| d.pcode).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 58);
    }

    #[test]
    fn lookups_accept_pcodes_and_iso_codes() {
        assert_eq!(region("CM005").unwrap().name_fr, "Littoral");
        assert_eq!(region("cm-sw").unwrap().pcode, "CM010");
        assert_eq!(department("CM005004").unwrap().name_fr, "Wouri");
        assert!(region("CM011").is_none());
        assert_eq!(departments_of("CM002").count(), 10);
    }
}
