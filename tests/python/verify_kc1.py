#!/usr/bin/env python3
"""Independent verifier of kin code tokens (`KC1:` + base45(COSE_Sign1)).

Uses only base45, cbor2 and cryptography -- no project code -- so the tests check the format
against a second implementation, as a testing site's scanner would:

    verify_kc1.py --jwks FILE TOKEN

FILE is the published key document ({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid", "x"}]}).
On success prints the claims as JSON and exits 0; on any failure prints the reason on stderr
and exits 1. Expiry is not judged here (the caller knows the time it cares about).
"""

import argparse
import base64
import json
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PREFIX = "KC1:"
COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
ALG_EDDSA = -8
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI = 1, 4, 6, 7
CLAIM_BINDING, CLAIM_KIND, CLAIM_COLOUR = -1, -2, -3
KINDS = {1: "kin_online", 2: "kin_offline"}
# The longest a code of each kind lives (exp - iat, seconds): 5 minutes online, 7 days offline.
MAX_LIFETIME = {1: 300, 2: 7 * 24 * 3600}
COLOURS = {1: "green", 2: "yellow", 3: "red"}


class Rejected(Exception):
    pass


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_for(jwks, kid):
    """The key and, for a retired one, when it stops signing (epoch seconds; during a
    rotation, in the future)."""
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == kid:
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                raise Rejected(f"key {kid!r} is not an Ed25519 OKP key")
            retired_at = jwk.get("kincode_retired_at")
            if retired_at is not None:
                retired_at = int(datetime.fromisoformat(retired_at.replace("Z", "+00:00")).timestamp())
            return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])), retired_at
    raise Rejected(f"no published key with kid {kid!r}")


def verify(token, jwks):
    if not token.startswith(PREFIX):
        raise Rejected("missing KC1: prefix")
    try:
        raw = base45.b45decode(token[len(PREFIX):])
        message = cbor2.loads(raw)
    except Exception as e:  # any decoding failure is a rejection, whatever the library raises
        raise Rejected(f"not base45 CBOR: {e}") from e
    if not isinstance(message, cbor2.CBORTag) or message.tag != COSE_SIGN1_TAG:
        raise Rejected("not a tagged COSE_Sign1")
    # cbor2 may hand back arrays as tuples and maps as immutable mappings.
    if not isinstance(message.value, (list, tuple)) or len(message.value) != 4:
        raise Rejected("COSE_Sign1 is not a 4-array")
    protected_bytes, unprotected, payload, signature = message.value
    if not all(isinstance(b, bytes) for b in (protected_bytes, payload, signature)):
        raise Rejected("COSE_Sign1 fields have the wrong types")
    if not isinstance(unprotected, Mapping) or len(unprotected) != 0:
        raise Rejected("unprotected header is not empty")
    protected = cbor2.loads(protected_bytes)
    if not isinstance(protected, Mapping):
        raise Rejected("protected header is not a map")
    if protected.get(HEADER_ALG) != ALG_EDDSA:
        raise Rejected(f"alg is {protected.get(HEADER_ALG)!r}, not EdDSA")
    kid = protected.get(HEADER_KID)
    if not isinstance(kid, bytes):
        raise Rejected("kid missing from the protected header")
    key, retired_at = public_key_for(jwks, kid.decode("ascii", errors="replace"))

    # RFC 9052 section 4.4: what was signed, rebuilt from the bytes as received.
    sig_structure = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    try:
        key.verify(signature, sig_structure)
    except InvalidSignature as e:
        raise Rejected("signature does not verify") from e

    claims = cbor2.loads(payload)
    if not isinstance(claims, Mapping):
        raise Rejected("payload is not a claims map")
    try:
        iat, exp, kind = claims[CLAIM_IAT], claims[CLAIM_EXP], claims[CLAIM_KIND]
        if exp - iat > MAX_LIFETIME[kind]:
            raise Rejected(f"lifetime {exp - iat} s is longer than its kind allows")
        if retired_at is not None and iat > retired_at:
            raise Rejected("issued after its key was retired")
        return {
            "iss": claims[CLAIM_ISS],
            "iat": claims[CLAIM_IAT],
            "exp": claims[CLAIM_EXP],
            "cti": claims[CLAIM_CTI].hex(),
            "binding": str(uuid.UUID(bytes=claims[CLAIM_BINDING])),
            "kind": KINDS[claims[CLAIM_KIND]],
            "colour": COLOURS[claims[CLAIM_COLOUR]],
            "kid": kid.decode("ascii"),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise Rejected(f"claims malformed: {e!r}") from e


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jwks", required=True, help="published key document (JSON)")
    parser.add_argument("token")
    args = parser.parse_args()
    with open(args.jwks, encoding="utf-8") as f:
        jwks = json.load(f)
    try:
        claims = verify(args.token, jwks)
    except Rejected as e:
        print(f"verify_kc1: rejected: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # malformed input deep inside a library: still a rejection
        print(f"verify_kc1: rejected: malformed token: {e!r}", file=sys.stderr)
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
