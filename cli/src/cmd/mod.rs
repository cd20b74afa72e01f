//! One module per subcommand: its arguments (clap) and what it does. A command uses the
//! shared modules (`client`, `flags`, `output`, `present`) and never another command; only
//! the demo, which shows the others at work, runs them.

pub mod audit;
pub mod backup;
pub mod demo;
pub mod device;
pub mod directory;
pub mod export;
pub mod history;
pub mod import;
pub mod init;
pub mod member;
pub mod network;
pub mod office;
pub mod org;
pub mod peers;
pub mod referral;
pub mod repair;
pub mod report;
pub mod retention;
pub mod service;
pub mod start;
pub mod status;
pub mod user;
