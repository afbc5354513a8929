"""`keygen`, `sign`, `verify`: make a key pair, sign a result.json, check one.

Exit codes: 0 ok; 1 verification failed (changed result, changed signature, other key, not
signed); 2 usage problem (unreadable key or file, not a result).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crm_audit.ci.signing import (
    SigningError,
    VerificationError,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_file,
    verify_file,
)


def _fail(message: str, code: int) -> None:
    click.echo(f"crm-audit: error: {message}", err=True)
    sys.exit(code)


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for crm-audit-signing.key (mode 0600) and crm-audit-signing.pub.")
@click.option("--force", is_flag=True, help="Replace an existing key pair in that folder.")
def keygen(out_dir: Path, force: bool) -> None:
    """Make an Ed25519 key pair for signing audit results.

    \b
    Keep the private key secret (a CI secret file); hand out the public key so others can
    run `crm-audit verify result.json --pubkey crm-audit-signing.pub`.
    """
    try:
        priv, pub, fp = generate_keypair(out_dir, force)
    except (SigningError, OSError) as exc:
        _fail(str(exc), 2)
    click.echo(f"wrote {priv} (private, mode 0600) and {pub} (public); key fingerprint {fp}")


@click.command()
@click.argument("result_file", metavar="RESULT.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ed25519 private key (PEM) from `crm-audit keygen`.")
@click.option("--out", "out_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the signed result here instead of replacing RESULT.json.")
def sign(result_file: Path, key_file: Path, out_file: Path | None) -> None:
    """Sign RESULT.json (in place, atomically) so its integrity and origin can be checked."""
    try:
        sig = sign_file(result_file, load_private_key(key_file), out_file)
    except (SigningError, VerificationError, OSError) as exc:
        _fail(str(exc), 2)
    click.echo(f"signed {out_file or result_file} with key {sig['key_fingerprint']} at {sig['signed_at']}")


@click.command()
@click.argument("result_file", metavar="RESULT.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pubkey", "pub_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The signer's Ed25519 public key (PEM).")
def verify(result_file: Path, pub_file: Path) -> None:
    """Check RESULT.json's signature; exit 1 if anything in it changed since it was signed."""
    try:
        key = load_public_key(pub_file)
        sig = verify_file(result_file, key)
    except SigningError as exc:
        _fail(str(exc), 2)
    except VerificationError as exc:
        _fail(f"{result_file}: verification FAILED: {exc}", 1)
    click.echo(f"{result_file}: signature valid — {sig['algorithm']} key {sig['key_fingerprint']}, "
               f"signed at {sig['signed_at']}")


COMMANDS = [keygen, sign, verify]
