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
    /// Run a local demonstration in a temporary folder, then clean up.
    Demo,
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
    #[arg(long, allow_hyphen_values = true)]
    pub latitude: Option<f64>,
    /// Longitude (WGS 84 degrees).
    #[arg(long, allow_hyphen_values = true)]
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
    #[arg(long)]
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
    #[arg(long)]
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
}

/// `passerelle history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Organisation id (this node's own by default).
    #[arg(long)]
    pub org: Option<OrgId>,
    /// Most entries shown, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
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
