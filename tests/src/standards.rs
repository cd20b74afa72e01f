//! The standards' own validators, run on what Passerelle writes: Open Referral's compiled
//! HSDS 3.0 JSON Schema (vendored in `tests/data/openreferral`) through `check-jsonschema`,
//! with additional properties refused everywhere as Open Referral's own CI does
//! (`compiletojsonschema --set-additional-properties-false-everywhere`), and
//! `frictionless validate` for the tabular package, libhxl's `hxlvalidate` (HXL's core
//! schema) for the 3W table. They are PyPI tools: `.ci/run`
//! installs them; the tests that run them are built only where they are found
//! (`cfg(passerelle_standards)`, tests/build.rs).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Open Referral's files, as vendored (README there says from where and which version).
pub fn openreferral() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/openreferral")
}

/// Open Referral's compiled JSON Schema of `object` (`organization`, `service`), with
/// additional properties refused everywhere, written in `dir`; its path.
fn strict_schema(object: &str, dir: &Path) -> PathBuf {
    let gz = openreferral().join(format!("schema/{object}.json.gz"));
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("vendored schema"))
        .read_to_string(&mut json)
        .expect("gunzip the schema");
    let compiled = dir.join(format!("{object}.json"));
    std::fs::write(&compiled, json).expect("write the schema");
    let strict = Command::new("compiletojsonschema")
        .arg("--set-additional-properties-false-everywhere")
        .arg(&compiled)
        .output()
        .expect("run compiletojsonschema (pip install compiletojsonschema)");
    assert!(
        strict.status.success(),
        "compiletojsonschema: {}",
        String::from_utf8_lossy(&strict.stderr)
    );
    let path = dir.join(format!("{object}.strict.json"));
    std::fs::write(&path, strict.stdout).expect("write the strict schema");
    path
}

/// Validates each of `instances` against Open Referral's compiled schema of `object`
/// (`organization`, `service`) with `check-jsonschema`; the validator's report when any
/// fails.
pub fn check_hsds(object: &str, instances: &[Value]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary folder");
    let schema = strict_schema(object, dir.path());
    let mut files = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let path = dir.path().join(format!("{object}-{i}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(instance).expect("json"))
            .expect("write an instance");
        files.push(path);
    }
    passes(
        Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(&schema)
            .args(&files),
        "check-jsonschema (pip install check-jsonschema)",
    )
}

/// Runs a validator: Ok when it exits 0, else what it printed.
fn passes(command: &mut Command, what: &str) -> Result<(), String> {
    let run = command
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    if run.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ))
    }
}

/// `frictionless validate` on a data package; its report when it is not valid.
pub fn frictionless_validate(datapackage: &Path) -> Result<(), String> {
    let run = Command::new("frictionless")
        .args(["validate", "--json"])
        .arg(datapackage)
        .output()
        .expect("run frictionless (pip install frictionless)");
    let report: Value = serde_json::from_slice(&run.stdout).map_err(|e| {
        format!(
            "frictionless printed no JSON report ({e}): {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        )
    })?;
    if report["valid"] == true {
        Ok(())
    } else {
        Err(serde_json::to_string_pretty(&report).unwrap_or_default())
    }
}

/// libhxl's `hxlvalidate` with HXL's core schema, every error reported (`-a`); its report
/// when the file is not valid.
pub fn hxl_validate(file: &Path) -> Result<(), String> {
    passes(
        Command::new("hxlvalidate").arg("-a").arg(file),
        "hxlvalidate (pip install libhxl)",
    )
}
