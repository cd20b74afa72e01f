//! `passerelle directory …`: search the directory of services; the drafts of a historical
//! mapping, and claiming one.

use std::path::Path;

use clap::{Args, Subcommand};
use passerelle_node::cartography::import;
use passerelle_node::directory::{SearchQuery, ServiceHit, open_drafts};
use passerelle_node::document::Edit;
use passerelle_node::model::{CapacityStatus, Claim, OrganisationRecord};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::Lang;
use passerelle_node::reference::taxonomy::Dimension;
use passerelle_node::{api, model};

use crate::client::{Outcome, apply_edits, call, items};
use crate::flags::{parse_capacity, parse_count, parse_dimension};
use crate::output::{self, table};
use crate::present::print_services;

/// `passerelle directory …`.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Find services; every filter given must match.
    Search(SearchArgs),
    /// The unclaimed drafts of a historical mapping (published by a coordinator with
    /// `import … --drafts`): unverified until their organisation claims them.
    Drafts,
    /// Claim a draft as this organisation's: its offices and services are copied into this
    /// organisation's own document as ordinary signed edits, and the draft is hidden
    /// everywhere.
    Claim {
        /// The draft id (`dft-…`, see `directory drafts`).
        draft: String,
        /// Claim it even though its name is not this organisation's name or acronym.
        #[arg(long)]
        anyway: bool,
        /// Show what would be copied; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Search filters.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to find in names and descriptions (case and accents ignored).
    pub text: Option<String>,
    /// Dimension: economic, social or psychosocial.
    #[arg(long, value_parser = parse_dimension)]
    pub dimension: Option<Dimension>,
    /// Category code.
    #[arg(long)]
    pub category: Option<String>,
    /// Region: P-code (CM005) or name in French or English (Littoral, Far North).
    #[arg(long)]
    pub region: Option<String>,
    /// Department: P-code (CM005004) or name (Wouri, Mfoundi).
    #[arg(long)]
    pub department: Option<String>,
    /// Cost kind: free, cost-shared or fee.
    #[arg(long, value_parser = ["free", "cost-shared", "fee"])]
    pub cost: Option<String>,
    /// Highest fee in XAF.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count::<u64>)]
    pub max_fee: Option<u64>,
    /// Language code.
    #[arg(long)]
    pub language: Option<String>,
    /// Capacity: available, waitlist or full.
    #[arg(long, value_parser = parse_capacity)]
    pub capacity: Option<CapacityStatus>,
    /// Include inactive and temporarily closed services.
    #[arg(long)]
    pub include_inactive: bool,
    /// Search the unclaimed drafts of a historical mapping instead (unverified).
    #[arg(long)]
    pub drafts: bool,
}

pub async fn run(
    data_dir: &Path,
    command: DirectoryCommand,
    json_out: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    let args = match command {
        DirectoryCommand::Search(args) => args,
        DirectoryCommand::Drafts => return drafts(data_dir, json_out).await,
        DirectoryCommand::Claim {
            draft,
            anyway,
            dry_run,
        } => return claim(data_dir, &draft, anyway, dry_run, json_out).await,
    };
    // Regions and departments by P-code or by name (French or English), as the import
    // takes them.
    let refused = |flag: &str, value: &str, why: String| {
        anyhow::anyhow!(
            "{}",
            lang.pick(
                format!("{flag}: {value:?} is {why}"),
                format!("{flag} : « {value} » : {why}"),
            )
        )
    };
    let region = args
        .region
        .as_deref()
        .map(|r| import::region_code(r, lang).map_err(|why| refused("--region", r, why)))
        .transpose()?;
    let department = args
        .department
        .as_deref()
        .map(|d| import::department_code(d, lang).map_err(|why| refused("--department", d, why)))
        .transpose()?;
    if let Some(category) = &args.category {
        model::check_category("--category", category).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let query = SearchQuery {
        text: args.text,
        dimension: args.dimension,
        category: args.category,
        region,
        department,
        cost: args.cost.map(|c| c.replace('-', "_")),
        max_fee_xaf: args.max_fee,
        language: args.language,
        capacity: args.capacity,
        include_inactive: args.include_inactive,
        drafts: args.drafts,
    };
    let hits: Vec<ServiceHit> = items(data_dir, api::Search { query }).await?;
    if args.drafts && !json_out && !hits.is_empty() {
        let by = hits
            .iter()
            .filter_map(|h| h.draft_by.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ");
        output::out(&crate::messages::said(
            format!(
                "unverified drafts of a historical mapping, published by {by} (each organisation claims its own: `passerelle directory claim DRAFT`):"
            ),
            format!(
                "brouillons non vérifiés d'une cartographie historique, publiés par {by} (chaque organisation réclame les siens : `passerelle directory claim BROUILLON`) :"
            ),
        ))?;
    }
    print_services(&hits, lang, true, json_out)
}

/// `passerelle directory drafts`.
pub async fn drafts(data_dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let records: Vec<OrganisationRecord> = items(data_dir, api::Records::default()).await?;
    let drafts = open_drafts(&records);
    if json {
        output::json(&drafts)?;
    } else if !drafts.is_empty() {
        output::out(&table(
            &[
                "draft",
                "organisation",
                "offices",
                "services",
                "published by",
                "from",
            ],
            drafts
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.record.profile.name.clone(),
                        d.record.offices.len().to_string(),
                        d.record.services.len().to_string(),
                        d.publisher_name.clone(),
                        d.source.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ))?;
        output::out(
            "unverified: each organisation claims its own with `passerelle directory claim DRAFT`",
        )?;
    }
    Ok(Outcome::found(!drafts.is_empty()))
}

/// `passerelle directory claim DRAFT`.
pub async fn claim(
    data_dir: &Path,
    draft: &str,
    anyway: bool,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let records: Vec<OrganisationRecord> = items(data_dir, api::Records::default()).await?;
    let view: OrganisationView = call(data_dir, api::Organisation::default()).await?;
    let own = &view.record;
    let Some(found) = open_drafts(&records).into_iter().find(|d| d.id == draft) else {
        let claimed = records.iter().find(|r| r.claims.contains_key(draft));
        anyhow::bail!(match claimed {
            Some(by) => format!("draft: {draft} was already claimed by {}", by.profile.name),
            None => format!("draft: no draft {draft:?} (see `passerelle directory drafts`)"),
        });
    };
    let name = &found.record.profile.name;
    if !anyway && !import::names(own, name) {
        anyhow::bail!(
            "draft: {draft} is for {name:?}, and this organisation is {:?}; if it is yours under another name, pass --anyway",
            own.profile.name
        );
    }
    let publisher_draft = records
        .iter()
        .find(|r| r.org_id == found.publisher)
        .and_then(|r| r.drafts.get(draft))
        .ok_or_else(|| anyhow::anyhow!("draft: {draft} vanished while reading it"))?;
    let plan = import::plan_entries(&publisher_draft.entries, own);
    if json {
        output::json(&serde_json::json!({
            "draft": draft,
            "changes": plan.changes,
            "unchanged": plan.unchanged,
            "written": !dry_run,
        }))?;
    } else {
        let prefix = if dry_run { "would " } else { "" };
        for change in &plan.changes {
            output::out(&format!("  {prefix}{change}"))?;
        }
    }
    if dry_run {
        return Ok(Outcome::Done);
    }
    let mut edits = plan.edits;
    edits.push(Edit::ClaimDraft {
        id: draft.to_owned(),
        claim: Claim {
            publisher: found.publisher.clone(),
            at: passerelle_node::unix_now(),
        },
    });
    apply_edits(data_dir, edits).await?;
    if !json {
        output::out(&crate::messages::said(
            format!(
                "claimed {draft}: {} change(s) signed by {}; the draft is now hidden on every node",
                plan.changes.len(),
                own.profile.name
            ),
            format!(
                "{draft} réclamé : {} changement(s) signé(s) par {} ; le brouillon est désormais masqué sur chaque nœud",
                plan.changes.len(),
                own.profile.name
            ),
        ))?;
    }
    Ok(Outcome::Done)
}
