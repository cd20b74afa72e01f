//! The command line: global flags and one subcommand enum whose doc comments are the help.

// Argument enums are built once per run; boxing their variants would only add noise.
#![allow(clippy::large_enum_variant)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use passerelle_node::identity::OrgId;
use passerelle_node::membership::Quorum;
use passerelle_node::model::{CapacityStatus, Cost, LegalStatus, ServiceStatus};
use passerelle_node::network::Multiaddr;
use passerelle_node::reference::taxonomy::Dimension;
use passerelle_node::referral::board::Priority;
use passerelle_node::referral::casefile::ConsentMethod;
use passerelle_node::referral::lifecycle::{Outcome, Reason, Status};

/// Passerelle: a node of the national referral network for returning migrants.
///
/// `passerelle start` runs this organisation's node; every other command talks to the
/// running node. Exit codes: 0 success, 1 nothing found, 2 error.
#[derive(Debug, Parser)]
#[command(name = "passerelle", version, propagate_version = true)]
pub struct Cli {
    /// Data folder of the node (keys, store, config). Default: the platform's data
    /// directory, e.g. ~/.local/share/passerelle.
    #[arg(long, global = true, env = "PASSERELLE_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables (shapes in docs/cli.md).
    #[arg(long, global = true)]
    pub json: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this organisation's identity, store and configuration in the data folder.
    Init(InitArgs),
    /// Run the node in the foreground until Ctrl-C or SIGTERM.
    Start(StartArgs),
    /// Show the connected peers.
    Peers,
    /// Show the node's identity, documents and store.
    Status,
    /// Show or change this organisation's profile.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage this organisation's offices.
    #[command(subcommand)]
    Office(OfficeCommand),
    /// Manage this organisation's services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Search the directory of services.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Show the signed change log of an organisation's document.
    History(HistoryArgs),
    /// Create, join, show or ratify the network this node belongs to.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Membership: request admission, approve, revoke, list members and requests.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Other nodes of this organisation (device keys): add, remove.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Referrals: find a service, send a returnee's case file, follow and answer referrals.
    #[command(subcommand)]
    Referral(ReferralCommand),
    /// Figures: the referral board (the default; counts only, no personal data), or the
    /// actors by domain and area with the gaps (`report actors`).
    Report(ReportArgs),
    /// The live mapping in the formats the field reads: HSDS 3.0, a 3W table with HXL
    /// hashtags, GeoJSON.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Bring an existing mapping in: this organisation's rows of a spreadsheet.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Repair a damaged store (run with the node stopped): keep every record that can
    /// still be read and verified, set the damaged store aside, and let the node fetch what
    /// is missing from its peers at the next start.
    Repair(RepairArgs),
    /// Run a local demonstration in a temporary folder, then clean up.
    Demo,
}

/// `passerelle repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Only say what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// The network id, when the database does not open at all and its seed file is lost
    /// too (`passerelle network show` on a partner's node prints it).
    #[arg(long)]
    pub network: Option<String>,
    /// A member's address to fetch everything from, in that case (repeat for several).
    #[arg(long = "peer")]
    pub peers: Vec<String>,
}

/// `passerelle network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network with its charter (run with the node stopped). This organisation is
    /// a founder; the other founders join with the invitation and run `network ratify`.
    Create(NetworkCreateArgs),
    /// Join a network from an invitation (run with the node stopped), then `start`.
    Join {
        /// The invitation text a member gave (`passerelle network invite`).
        invitation: String,
    },
    /// Print an invitation for a new organisation: the network id and this node's addresses.
    Invite {
        /// Address others reach this node at (repeat), e.g. /dns4/node.example.cm/tcp/4690;
        /// default: the addresses it listens on.
        #[arg(long, value_name = "MULTIADDR")]
        address: Vec<Multiaddr>,
    },
    /// Show the network: charter, founders, members, open proposals.
    Show,
    /// Sign the charter (founders only).
    Ratify,
    /// Propose (or approve the open proposal of) a charter amendment.
    Amend(AmendArgs),
}

/// `passerelle network create`.
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// The network's name.
    #[arg(long)]
    pub name: String,
    /// Another founding organisation's id (repeat); this organisation is always a founder.
    #[arg(long, value_name = "ORG-ID")]
    pub founder: Vec<OrgId>,
    /// Approvals needed to admit an organisation: a number ("2") or a fraction of the
    /// members ("1/2", "2/3").
    #[arg(long, default_value = "1/2", value_parser = parse_quorum)]
    pub admission: Quorum,
    /// Approvals needed to revoke a member (the member does not count).
    #[arg(long, default_value = "1/2", value_parser = parse_quorum)]
    pub revocation: Quorum,
    /// Approvals needed to amend the charter.
    #[arg(long, default_value = "2/3", value_parser = parse_quorum)]
    pub amendment: Quorum,
}

/// `passerelle network amend`.
#[derive(Debug, Args)]
pub struct AmendArgs {
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New admission quorum.
    #[arg(long, value_parser = parse_quorum)]
    pub admission: Option<Quorum>,
    /// New revocation quorum.
    #[arg(long, value_parser = parse_quorum)]
    pub revocation: Option<Quorum>,
    /// New amendment quorum.
    #[arg(long, value_parser = parse_quorum)]
    pub amendment: Option<Quorum>,
}

/// `passerelle member …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Ask to join (on a candidate's node): the request goes to every member node this
    /// node connects to, until the members decide.
    Request {
        /// A word to the members (who you are, who invited you).
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Approve an organisation's admission (proposing it if this node holds its request)
    /// or the open proposal about it.
    Approve {
        /// The organisation's id.
        org: OrgId,
    },
    /// Propose (or approve the open proposal of) a member's revocation.
    Revoke {
        /// The member's id.
        org: OrgId,
        /// Why, for every member to read.
        #[arg(long)]
        reason: String,
    },
    /// List members, former members, open proposals and admission requests received.
    List,
}

/// `passerelle device …`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Authorise another node of this organisation (its key id, from its `status`).
    Add {
        /// The device node's key id.
        key: OrgId,
        /// Where it runs.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Withdraw a device key; what it wrote so far stays.
    Remove {
        /// The device's key id.
        key: OrgId,
    },
}

fn parse_quorum(text: &str) -> Result<Quorum, String> {
    text.parse()
        .map_err(|e: passerelle_node::membership::MembershipError| e.to_string())
}

/// `passerelle init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The organisation's official name.
    #[arg(long, required_unless_present = "device_of")]
    pub org_name: Option<String>,
    /// Make this a device node of an existing member organisation (its id): another
    /// office's node, with its own key, writing that organisation's document once the
    /// organisation has run `passerelle device add <this node's key>`.
    #[arg(long, value_name = "ORG-ID", conflicts_with_all = ["org_name", "legal_status", "acronym"])]
    pub device_of: Option<OrgId>,
    /// Legal status.
    #[arg(long, value_parser = parse_legal_status)]
    pub legal_status: Option<LegalStatus>,
    /// Acronym or short name.
    #[arg(long)]
    pub acronym: Option<String>,
}

/// `passerelle start`.
#[derive(Debug, Args, Default)]
pub struct StartArgs {
    /// Address to listen on (repeat for several); replaces `[network] listen` of the config.
    /// Default: /ip4/0.0.0.0/tcp/4690.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Peer to connect to and keep connected to (repeat for several); added to
    /// `[network] peers` of the config. E.g. /ip4/192.0.2.10/tcp/4690 or /dns4/node.example.cm/tcp/4690.
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<Multiaddr>,
    /// Run without networking (local directory only).
    #[arg(long)]
    pub no_network: bool,
    /// Do not look for peers on the local network (mDNS).
    #[arg(long)]
    pub no_mdns: bool,
    /// Verify every stored signed change and rebuild every document from them before
    /// serving (slower: about 15 s for a national network of 300,000 changes), instead of
    /// starting from the snapshots that hold all of them.
    #[arg(long)]
    pub verify_store: bool,
}

/// `passerelle org …`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Show an organisation's profile (this node's own by default).
    Show {
        /// Organisation id.
        #[arg(long)]
        org: Option<OrgId>,
    },
    /// Change profile fields; only the fields given change.
    Set(Box<OrgSetArgs>),
}

/// Contact flags shared by several commands.
#[derive(Debug, Args, Default)]
pub struct ContactArgs {
    /// Contact person or desk.
    #[arg(long)]
    pub contact_name: Option<String>,
    /// Contact e-mail.
    #[arg(long)]
    pub contact_email: Option<String>,
    /// Contact phone (+237…).
    #[arg(long)]
    pub contact_phone: Option<String>,
}

/// `passerelle org set`.
#[derive(Debug, Args)]
pub struct OrgSetArgs {
    /// Official name.
    #[arg(long)]
    pub name: Option<String>,
    /// Acronym.
    #[arg(long)]
    pub acronym: Option<String>,
    /// What the organisation does.
    #[arg(long)]
    pub description: Option<String>,
    /// Legal status.
    #[arg(long, value_parser = parse_legal_status)]
    pub legal_status: Option<LegalStatus>,
    /// Parent organisation (for a ministry's branch): its id or name.
    #[arg(long)]
    pub parent: Option<String>,
    /// Web site (https://…).
    #[arg(long)]
    pub website: Option<String>,
    /// Working languages, comma-separated ISO 639 codes (fr,en,ful).
    #[arg(long, value_delimiter = ',')]
    pub languages: Option<Vec<String>>,
    /// Main contact (replaces the contact list with this one).
    #[command(flatten)]
    pub contact: ContactArgs,
    /// Any fields as a JSON object (merge patch: `null` clears a field).
    #[arg(long, value_name = "JSON")]
    pub patch: Option<String>,
}

/// `passerelle office …`.
#[derive(Debug, Subcommand)]
pub enum OfficeCommand {
    /// Add an office.
    Add(OfficeArgs),
    /// Change an office; only the fields given change.
    Update {
        /// Office id (off-…).
        id: String,
        /// New values.
        #[command(flatten)]
        fields: OfficeArgs,
    },
    /// Remove an office (no service may still use it).
    Remove {
        /// Office id.
        id: String,
    },
    /// List an organisation's offices (this node's own by default).
    List {
        /// Organisation id.
        #[arg(long)]
        org: Option<OrgId>,
    },
}

/// Office fields.
#[derive(Debug, Args)]
pub struct OfficeArgs {
    /// Office name.
    #[arg(long)]
    pub name: Option<String>,
    /// Region P-code (CM001 … CM010) or ISO code (CM-LT).
    #[arg(long)]
    pub region: Option<String>,
    /// Department P-code (e.g. CM005004 for Wouri).
    #[arg(long)]
    pub department: Option<String>,
    /// Town or city.
    #[arg(long)]
    pub town: Option<String>,
    /// Street address or directions.
    #[arg(long)]
    pub address: Option<String>,
    /// Latitude (WGS 84 degrees).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_degrees)]
    pub latitude: Option<f64>,
    /// Longitude (WGS 84 degrees).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_degrees)]
    pub longitude: Option<f64>,
}

/// `passerelle service …`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Add a service (from flags, or from a JSON file with --from-file).
    Add(ServiceArgs),
    /// Change a service; only the fields given change.
    Update {
        /// Service id (svc-…).
        id: String,
        /// New values.
        #[command(flatten)]
        fields: ServiceArgs,
    },
    /// Remove a service.
    Remove {
        /// Service id.
        id: String,
    },
    /// Show one service.
    Show {
        /// Service id.
        id: String,
        /// Organisation id (this node's own by default).
        #[arg(long)]
        org: Option<OrgId>,
    },
    /// List an organisation's services (this node's own by default).
    List {
        /// Organisation id.
        #[arg(long)]
        org: Option<OrgId>,
    },
}

/// Service fields.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Service name.
    #[arg(long)]
    pub name: Option<String>,
    /// What the service is.
    #[arg(long)]
    pub description: Option<String>,
    /// Dimension: economic, social or psychosocial.
    #[arg(long, value_parser = parse_dimension)]
    pub dimension: Option<Dimension>,
    /// Category code (repeat for several); see docs/data-model.md.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Who may use it.
    #[arg(long)]
    pub eligibility: Option<String>,
    /// Cost: free, cost-shared or fee:<XAF>.
    #[arg(long, value_parser = parse_cost, allow_hyphen_values = true)]
    pub cost: Option<Cost>,
    /// Capacity: available, waitlist or full.
    #[arg(long, value_parser = parse_capacity)]
    pub capacity: Option<CapacityStatus>,
    /// Places free (or people waiting), where known.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count::<u32>)]
    pub places: Option<u32>,
    /// Language code (repeat for several).
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Region P-code of the service area (repeat for several).
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Department P-code of the service area (repeat for several).
    #[arg(long = "department")]
    pub departments: Vec<String>,
    /// Office id where it is delivered (repeat for several).
    #[arg(long = "office")]
    pub offices: Vec<String>,
    /// Days and hours, in words.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Document a beneficiary must bring (repeat for several).
    #[arg(long = "document")]
    pub documents: Vec<String>,
    /// Status: active, inactive or temporarily_closed.
    #[arg(long, value_parser = parse_service_status)]
    pub status: Option<ServiceStatus>,
    /// Contact for this service.
    #[command(flatten)]
    pub contact: ContactArgs,
    /// Read the service (add) or the fields to change (update) from a JSON file.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

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
    /// Region P-code.
    #[arg(long)]
    pub region: Option<String>,
    /// Department P-code.
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

/// `passerelle history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Organisation id (this node's own by default).
    #[arg(long)]
    pub org: Option<OrgId>,
    /// Most entries shown, newest first.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = parse_count::<usize>)]
    pub limit: usize,
}

/// A whole number, 0 or more.
fn parse_count<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse::<T>()
        .map_err(|_| format!("{s:?} is not a whole number of 0 or more (e.g. 12)"))
}

/// A whole number, 1 or more.
fn parse_positive(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{s:?} is not a whole number of 1 or more (e.g. 100)"
        )),
    }
}

/// A number of degrees (decimal, WGS 84).
fn parse_degrees(s: &str) -> Result<f64, String> {
    match s.trim().replace(',', ".").parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(d),
        _ => Err(format!(
            "{s:?} is not a number of degrees (decimal, e.g. 4.0483 or -9.7043)"
        )),
    }
}

fn parse_dimension(s: &str) -> Result<Dimension, String> {
    s.parse()
}
fn parse_cost(s: &str) -> Result<Cost, String> {
    s.parse()
}
fn parse_capacity(s: &str) -> Result<CapacityStatus, String> {
    s.parse()
}
fn parse_service_status(s: &str) -> Result<ServiceStatus, String> {
    s.parse()
}
fn parse_legal_status(s: &str) -> Result<LegalStatus, String> {
    s.parse()
}

fn parse_reason(text: &str) -> Result<Reason, String> {
    text.replace('-', "_").parse()
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    text.replace('-', "_").parse()
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse()
}

fn parse_priority(text: &str) -> Result<Priority, String> {
    text.parse()
}

fn parse_consent_method(text: &str) -> Result<ConsentMethod, String> {
    text.parse()
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 48h, 7d or 2weeks ({e})"))
}

/// A calendar date `YYYY-MM-DD` as Unix seconds (midnight UTC).
pub fn parse_date(text: &str) -> Result<i64, String> {
    let time = humantime::parse_rfc3339_weak(&format!("{} 00:00:00", text.trim()))
        .map_err(|_| format!("{text:?} is not a date written YYYY-MM-DD"))?;
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| format!("{text:?} is before 1970"))
}

/// `passerelle referral …`.
#[derive(Debug, Subcommand)]
pub enum ReferralCommand {
    /// Services that fit a returnee's needs, best first (needs covered, capacity, cost).
    Match(MatchArgs),
    /// Send a referral with the person's case file. Consent (or an override with its
    /// reason) is required; the case file goes only to the receiving organisation's node,
    /// encrypted, and never onto the shared board.
    Send(SendArgs),
    /// The referral board: all, incoming, outgoing, by status, overdue, or open to take.
    List(ListArgs),
    /// One referral: board entry, history, and the case file where this node may read it
    /// (each read is recorded in the audit log).
    Show {
        /// The referral id (ref-…).
        id: String,
    },
    /// Accept a referral this organisation received.
    Accept {
        /// The referral id.
        id: String,
    },
    /// Decline a referral this organisation received.
    Decline {
        /// The referral id.
        id: String,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// Start providing the service.
    Start {
        /// The referral id.
        id: String,
    },
    /// Put the person on the waiting list.
    Waitlist {
        /// The referral id.
        id: String,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// The service was delivered.
    Complete {
        /// The referral id.
        id: String,
        /// What it achieved: achieved, partially_achieved, not_achieved.
        #[arg(long, value_parser = parse_outcome)]
        outcome: Outcome,
    },
    /// The service could not be delivered.
    Fail {
        /// The referral id.
        id: String,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// Withdraw a referral this organisation sent.
    Withdraw {
        /// The referral id.
        id: String,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// Mark a referral this organisation sent as made by mistake.
    #[command(name = "entered-in-error")]
    EnteredInError {
        /// The referral id.
        id: String,
    },
    /// Offer one of this organisation's services for another's open referral.
    Propose {
        /// The referral id.
        id: String,
        /// This organisation's service id (svc-…).
        #[arg(long)]
        service: String,
    },
    /// Give this organisation's open referral to one of the organisations that proposed;
    /// the case file then goes to it.
    Assign {
        /// The referral id.
        id: String,
        /// The organisation chosen (id, or a part of its name).
        #[arg(long)]
        org: String,
    },
    /// Erase a referral's case file on this node, and ask the other organisation's node
    /// to erase its copy. The board entry stays (it holds no personal data).
    Erase {
        /// The referral id.
        id: String,
    },
    /// The local audit log of case files: receipts, reads, deliveries, erasures.
    Audit {
        /// Only this referral.
        id: Option<String>,
    },
}

/// `passerelle referral match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// A need, as a category code (repeat for several), e.g. vocational_training.
    #[arg(long = "need", required = true, value_name = "CATEGORY")]
    pub needs: Vec<String>,
    /// Region P-code where the person is, e.g. CM005.
    #[arg(long)]
    pub region: Option<String>,
    /// Department P-code (services there rank higher).
    #[arg(long)]
    pub department: Option<String>,
    /// Highest fee the person can pay, in XAF (0: free or cost-shared only).
    #[arg(long, value_name = "XAF", allow_negative_numbers = true, value_parser = parse_count::<u64>)]
    pub max_fee: Option<u64>,
    /// A language the person speaks (ISO 639 code).
    #[arg(long)]
    pub language: Option<String>,
    /// Include services that are full.
    #[arg(long)]
    pub include_full: bool,
}

/// `passerelle referral send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The receiving organisation (id, or a part of its name); omit with --service for an
    /// open referral to any member offering --category in --region.
    #[arg(long, requires = "service")]
    pub to: Option<String>,
    /// The receiving organisation's service id (svc-…).
    #[arg(long, requires = "to")]
    pub service: Option<String>,
    /// Category of service asked for (required for an open referral).
    #[arg(long)]
    pub category: Option<String>,
    /// Region P-code where the person is, e.g. CM005.
    #[arg(long)]
    pub region: String,
    /// routine or urgent.
    #[arg(long, default_value = "routine", value_parser = parse_priority)]
    pub priority: Priority,
    /// How long the receiver has to answer, e.g. 48h, 7d.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub respond_within: std::time::Duration,
    /// The case file as a JSON or TOML file (fields: name, sex, birth_year, age, phone,
    /// languages, location, needs, vulnerabilities, notes); flags below override it.
    #[arg(long, value_name = "FILE")]
    pub case_file: Option<PathBuf>,
    /// The person's full name.
    #[arg(long)]
    pub name: Option<String>,
    /// female, male or other.
    #[arg(long)]
    pub sex: Option<String>,
    /// Year of birth.
    #[arg(long)]
    pub birth_year: Option<u16>,
    /// Age in years (when the year of birth is not known).
    #[arg(long)]
    pub age: Option<u8>,
    /// Phone number.
    #[arg(long)]
    pub phone: Option<String>,
    /// A language the person speaks (repeat).
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Where to find the person (town, quarter).
    #[arg(long)]
    pub location: Option<String>,
    /// A need, in words or as a category code (repeat).
    #[arg(long = "need")]
    pub needs: Vec<String>,
    /// A vulnerability, e.g. single_parent, disability (repeat).
    #[arg(long = "vulnerability")]
    pub vulnerabilities: Vec<String>,
    /// Notes for the receiving caseworker.
    #[arg(long)]
    pub notes: Option<String>,
    /// How the person consented: verbal, written, digital, guardian.
    #[arg(long, value_parser = parse_consent_method, conflicts_with = "consent_override")]
    pub consent: Option<ConsentMethod>,
    /// When consent was given (YYYY-MM-DD; default today).
    #[arg(long, value_parser = parse_date, requires = "consent")]
    pub consent_date: Option<i64>,
    /// When consent ends (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, requires = "consent")]
    pub consent_expires: Option<i64>,
    /// The case-file fields the person agreed to share, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "consent")]
    pub consent_data: Vec<String>,
    /// Send without consent, with the reason (e.g. a child at risk); logged on both nodes.
    #[arg(long, value_name = "REASON")]
    pub consent_override: Option<String>,
}

/// `passerelle referral list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only referrals received by this organisation.
    #[arg(long, conflicts_with = "outgoing")]
    pub incoming: bool,
    /// Only referrals sent by this organisation.
    #[arg(long)]
    pub outgoing: bool,
    /// Only referrals with this status (pending, accepted, in_progress, …).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only pending referrals past their response deadline.
    #[arg(long)]
    pub overdue: bool,
    /// Only open referrals this organisation could take (it offers the category there).
    #[arg(long)]
    pub open: bool,
    /// Show at most this many, newest first (the total is always given).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = parse_positive, conflicts_with = "all")]
    pub limit: u32,
    /// Show every matching referral.
    #[arg(long)]
    pub all: bool,
}

fn parse_lang(text: &str) -> Result<passerelle_node::reference::Lang, String> {
    text.parse()
}

/// `passerelle report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What to report on (default: referrals).
    #[command(subcommand)]
    pub what: Option<ReportCommand>,
}

/// `passerelle report …`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Aggregate figures of the referral board (the default).
    Referrals,
    /// Organisations and services by dimension, category, region and department, and the
    /// regions where no organisation offers a category.
    Actors {
        /// Print CSV tables instead of human ones.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Language of labels: fr or en (default: the config's).
        #[arg(long, value_parser = parse_lang)]
        lang: Option<passerelle_node::reference::Lang>,
    },
}

/// `passerelle export …`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Open Referral HSDS 3.0: DIR/organizations.json (every organisation with its locations
    /// and services) and the tabular data package (one CSV per table and
    /// datapackage.json); the Cameroon profile is in docs/cartography.md.
    Hsds {
        /// The folder to write into (created if missing).
        dir: PathBuf,
        /// Language of labels: fr or en (default: the config's).
        #[arg(long, value_parser = parse_lang)]
        lang: Option<passerelle_node::reference::Lang>,
    },
    /// A 3W table (who does what where): one row per service, category and place.
    Csv {
        /// Add the HXL hashtag row (#org+name, #sector, #adm1+code, …) under the header.
        #[arg(long)]
        hxl: bool,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Language of labels: fr or en (default: the config's).
        #[arg(long, value_parser = parse_lang)]
        lang: Option<passerelle_node::reference::Lang>,
    },
    /// GeoJSON (RFC 7946): offices as points, service areas as features keyed by P-code.
    Geojson {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Language of labels: fr or en (default: the config's).
        #[arg(long, value_parser = parse_lang)]
        lang: Option<passerelle_node::reference::Lang>,
    },
    /// A complete, verifiable backup: every document held, in Automerge's standard binary
    /// format (DIR/<name>.automerge), with its signed changes (<name>.changes) and its heads
    /// signed by this node (<name>.heads.json).
    Automerge {
        /// The folder to write into (created if missing).
        dir: PathBuf,
    },
}

/// What `import csv` and `import hsds` may do.
#[derive(Debug, Args)]
pub struct ImportOptions {
    /// Show what would be created or updated, and every entry that cannot be read; write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the entries that read well even if others do not (they are still listed).
    #[arg(long)]
    pub skip_errors: bool,
    /// Also publish the other organisations' entries as drafts in this organisation's
    /// document (a coordinator's historical mapping), for each to claim
    /// (`directory claim`).
    #[arg(long)]
    pub drafts: bool,
}

/// `passerelle import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A mapping spreadsheet: CSV (comma or semicolon) or a workbook (.xlsx, .xls, .ods);
    /// headers in French or English (see docs/cartography.md). This organisation's rows
    /// become its offices and services; importing the same file again changes nothing.
    #[command(alias = "xlsx")]
    Csv {
        /// The file (.csv, .xlsx, .xls or .ods).
        file: PathBuf,
        /// The workbook's sheet to read (the first by default).
        #[arg(long)]
        sheet: Option<String>,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// Open Referral HSDS 3.0: a JSON file (an organization, a list of them, or an API page)
    /// or a folder holding the tabular package (organization.csv, service.csv, …). Fields
    /// Passerelle does not model are listed.
    Hsds {
        /// The JSON file or the package's folder.
        path: PathBuf,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// A backup written by `passerelle export automerge`: every file is verified (signed
    /// heads, every change's signature, the .automerge file), then its changes are merged
    /// like changes received from a peer (membership and write rules apply).
    Automerge {
        /// The folder holding the backup.
        dir: PathBuf,
        /// Verify only; merge nothing.
        #[arg(long)]
        dry_run: bool,
    },
}
