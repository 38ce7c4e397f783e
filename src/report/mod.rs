//! What the journal says, shaped for people: the rotations' status and the token inventory, as
//! tables and JSON for the CLI and as rows for the status page, which both read from here.

pub mod status;
pub mod tokens;
