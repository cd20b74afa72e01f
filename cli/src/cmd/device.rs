//! `passerelle device …`: other nodes of this organisation (device keys).

use std::path::Path;

use clap::Subcommand;
use passerelle_node::identity::{EncryptionPublicKey, KeyId};
use passerelle_node::node::Decision;

use crate::client::{Outcome, decide};

/// `passerelle device …`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Authorise another node of this organisation (its key id, from its `status`).
    Add {
        /// The device node's key id.
        key: KeyId,
        /// Where it runs.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Withdraw a device key; what it wrote so far stays.
    Remove {
        /// The device's key id.
        key: KeyId,
    },
    /// Let a device (a regional office) receive case files: the organisation's node can
    /// then hand a referral's case file on to it (`referral to-office`), sealed to the
    /// device's own encryption key.
    Grant {
        /// The device's key id.
        key: KeyId,
        /// The device's encryption key (its `passerelle status`).
        case_key: EncryptionPublicKey,
    },
    /// End a device's access to case files: it destroys those it holds, and none is
    /// handed to it again.
    Ungrant {
        /// The device's key id.
        key: KeyId,
    },
}

pub async fn run(
    data_dir: &Path,
    command: DeviceCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    match command {
        DeviceCommand::Add { key, label } => {
            decide(
                data_dir,
                Decision::AddDevice { device: key, label },
                json_out,
            )
            .await
        }
        DeviceCommand::Remove { key } => {
            decide(data_dir, Decision::RemoveDevice { device: key }, json_out).await
        }
        DeviceCommand::Grant { key, case_key } => {
            decide(
                data_dir,
                Decision::GrantCaseFiles {
                    device: key,
                    case_key,
                },
                json_out,
            )
            .await
        }
        DeviceCommand::Ungrant { key } => {
            decide(
                data_dir,
                Decision::RevokeCaseFiles { device: key },
                json_out,
            )
            .await
        }
    }
}
