//! `tibet-iot keygen --out FILE` and `tibet-iot pubkey FILE`: Ed25519 key
//! files (PKCS#8 PEM, mode 0600) and their public key text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tibet_ping::identity::Keypair;

/// Arguments of `keygen`.
#[derive(clap::Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write the new private key (PKCS#8 PEM, mode 0600); an
    /// existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `pubkey`.
#[derive(clap::Args, Debug)]
pub(crate) struct PubkeyArgs {
    /// A private key file written by `keygen` or `openssl genpkey -algorithm ed25519`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Writes a fresh key and prints its public key.
pub(crate) fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let key = Keypair::generate(&mut rand::rngs::OsRng);
    key.save(&args.out)?;
    // The label on stderr, the bare key on stdout (for `$(tibet-iot keygen ...)`).
    eprintln!(
        "wrote the private key {} (mode 0600); its public key, for `--pin DID=KEY` on peers:",
        args.out.display()
    );
    println!("{}", key.public());
    Ok(ExitCode::SUCCESS)
}

/// Prints the public key of a key file.
pub(crate) fn pubkey(args: PubkeyArgs) -> Result<ExitCode> {
    let key = Keypair::load(&args.file)?;
    println!("{}", key.public());
    Ok(ExitCode::SUCCESS)
}
