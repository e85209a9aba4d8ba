"""SIP digest authentication (RFC 3261 s22, RFC 2617 style; SHA-256/SHA-512-256 per RFC 8760).

Both halves, sans-IO:

* server (UAS that demands credentials): :class:`DigestServer` issues challenges for a
  401 ``WWW-Authenticate`` or 407 ``Proxy-Authenticate`` and verifies the matching
  ``Authorization`` / ``Proxy-Authorization`` header.  Nonces carry their issue time
  and an HMAC, so an expired nonce of ours is recognised and answered with
  ``stale=true`` (RFC 2617 s3.2.1) while a forged one is not.  Each nonce-count is
  accepted once (RFC 2617 s3.2.2 replay protection).
* client (the focus dialling out, tests): :func:`answer_challenge` computes the
  header value from a parsed challenge.

Only ``qop=auth`` (and the RFC 2069 no-qop form when the challenge has no qop) is
supported: SIP bodies are not integrity-protected here (``auth-int``).  Time is a
parameter (``now``, seconds); randomness comes from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from focus.sip.message import Request, Response, make_response
from focus.sip.transaction import new_branch, new_tag

__all__ = [
    "ALGORITHMS",
    "AuthOutcome",
    "AuthResult",
    "DigestChallenge",
    "DigestConfig",
    "DigestCredentials",
    "DigestParseError",
    "DigestServer",
    "answer_challenge",
    "authorize_request",
    "challenge",
    "check_request",
    "compute_response",
    "ha1",
    "parse_auth_params",
]

# algorithm token -> hashlib name; "-sess" variants use the same hash (RFC 7616 s3.4.2).
ALGORITHMS: dict[str, str] = {
    "MD5": "md5",
    "MD5-sess": "md5",
    "SHA-256": "sha256",
    "SHA-256-sess": "sha256",
}
if "sha512_256" in hashlib.algorithms_available:  # RFC 8760 s2.3 (needs OpenSSL's SHA-512/256)
    ALGORITHMS["SHA-512-256"] = "sha512_256"
    ALGORITHMS["SHA-512-256-sess"] = "sha512_256"

_MAX_HEADER = 4096  # a credentials header longer than this is not a real client's
_NONCE_MAC_LEN = 16


class DigestParseError(ValueError):
    """The peer sent a malformed challenge or credentials header.

    Whose fault: the remote party.  What to answer: a server re-challenges with
    401/407 (or answers 400 if the header cannot even be split); a client gives up.
    """


def _hash(algorithm: str, data: str) -> str:
    try:
        name = ALGORITHMS[algorithm]
    except KeyError:
        raise DigestParseError(f"unsupported digest algorithm {algorithm!r}") from None
    return hashlib.new(name, data.encode("utf-8")).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 = H(username:realm:password) (RFC 7616 s3.4.2, RFC 8760 s2): what a server keeps
    instead of the password. ``algorithm`` picks H; a ``-sess`` variant's HA1 is the same."""
    return _hash(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str | None = None,
    stored_ha1: str | None = None,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` value of RFC 7616 s3.4.1 (RFC 2617 s3.2.2.1 for MD5).

    With ``qop=auth``: H(HA1:nonce:nc:cnonce:qop:HA2); without qop (RFC 2069):
    H(HA1:nonce:HA2).  HA1 = H(user:realm:password) (or ``stored_ha1``, a server's
    stored :func:`ha1`, instead of the password), and for ``-sess`` algorithms
    HA1 = H(HA1:nonce:cnonce).  HA2 = H(method:uri).
    """
    if stored_ha1 is not None:
        key = stored_ha1.lower()
    elif password is not None:
        key = ha1(algorithm, username, realm, password)
    else:
        raise ValueError("compute_response needs the password or its HA1")
    if algorithm.endswith("-sess"):
        if cnonce is None:
            raise DigestParseError(f"{algorithm} needs a cnonce")
        key = _hash(algorithm, f"{key}:{nonce}:{cnonce}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{key}:{nonce}:{ha2}")
    if qop != "auth":
        raise DigestParseError(f"unsupported qop {qop!r}; only 'auth' is supported")
    if nc is None or cnonce is None:
        raise DigestParseError("qop=auth needs both nc and cnonce")
    return _hash(algorithm, f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------- parsing


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest a=b, c="d"`` into ``("Digest", {"a": "b", "c": "d"})``.

    Parameter names are lower-cased (RFC 3261 s25.1: they are case-insensitive);
    quoted-pair escapes are undone.  A repeated parameter is an error.
    """
    if len(value) > _MAX_HEADER:
        raise DigestParseError(f"authentication header longer than {_MAX_HEADER} characters")
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme or not scheme.isascii() or not scheme.replace("-", "").isalnum():
        raise DigestParseError(f"authentication header has no scheme: {value!r}")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while True:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise DigestParseError(f"auth-param without '=' in {value!r}")
        name = rest[i:eq].strip().lower()
        if not name or any(c in name for c in ' \t,"'):
            raise DigestParseError(f"bad auth-param name {rest[i:eq]!r}")
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise DigestParseError(f"unterminated quoted string for {name!r}")
                c = rest[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise DigestParseError(f"dangling escape in {name!r}")
                    chars.append(rest[i + 1])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                chars.append(c)
                i += 1
            param = "".join(chars)
        else:
            start = i
            while i < n and rest[i] not in ", \t":
                i += 1
            param = rest[start:i]
            if not param:
                raise DigestParseError(f"empty value for auth-param {name!r}")
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] != ",":
            raise DigestParseError(f"junk after auth-param {name!r}: {rest[i:]!r}")
        if name in params:
            raise DigestParseError(f"auth-param {name!r} repeated")
        params[name] = param
    return scheme, params


def _canonical_algorithm(token: str) -> str:
    # algorithm tokens are case-insensitive (RFC 7616 s3.3)
    for known in ALGORITHMS:
        if known.lower() == token.lower():
            return known
    raise DigestParseError(f"unsupported digest algorithm {token!r}")


def _digest_params(value: str, what: str) -> dict[str, str]:
    """The parameters of a header that must use the Digest scheme (``what`` names it in
    the error: the peer sent another scheme)."""
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest":
        raise DigestParseError(f"not {what} (scheme {scheme!r})")
    return params


def _need(params: dict[str, str], name: str) -> str:
    try:
        return params[name]
    except KeyError:
        raise DigestParseError(f"digest header lacks the {name!r} parameter") from None


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` digest challenge (RFC 7616 s3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    def to_header(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=TRUE")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        p = _digest_params(value, "a Digest challenge")
        qop = tuple(q.strip() for q in p["qop"].split(",") if q.strip()) if "qop" in p else ()
        return cls(
            realm=_need(p, "realm"),
            nonce=_need(p, "nonce"),
            algorithm=_canonical_algorithm(p.get("algorithm", "MD5")),
            qop=qop,
            opaque=p.get("opaque"),
            stale=p.get("stale", "false").lower() == "true",
        )


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """One ``Authorization``/``Proxy-Authorization`` digest header (RFC 7616 s3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def to_header(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        p = _digest_params(value, "Digest credentials")
        nc = p.get("nc")
        if nc is not None and (len(nc) != 8 or any(c not in "0123456789abcdefABCDEF" for c in nc)):
            raise DigestParseError(f"nc must be 8 hex digits, got {nc!r}")
        return cls(
            username=_need(p, "username"),
            realm=_need(p, "realm"),
            nonce=_need(p, "nonce"),
            uri=_need(p, "uri"),
            response=_need(p, "response"),
            algorithm=_canonical_algorithm(p.get("algorithm", "MD5")),
            qop=p.get("qop"),
            nc=nc,
            cnonce=p.get("cnonce"),
            opaque=p.get("opaque"),
        )


def answer_challenge(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> DigestCredentials:
    """Credentials answering ``challenge`` for a request ``method uri`` (RFC 3261 s22.2).

    Uses ``qop=auth`` when the challenge offers it, else the RFC 2069 form.  ``cnonce``
    is random unless given (tests pass the RFC's value).
    """
    if challenge.qop and "auth" not in challenge.qop:
        raise DigestParseError(f"challenge offers only qop {challenge.qop}; 'auth' needed")
    qop = "auth" if challenge.qop else None
    use_cnonce = cnonce if cnonce is not None else secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = compute_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text if qop else None,
        cnonce=use_cnonce if (qop or challenge.algorithm.endswith("-sess")) else None,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text if qop else None,
        cnonce=use_cnonce if (qop or challenge.algorithm.endswith("-sess")) else None,
        opaque=challenge.opaque,
    )


# --------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """How a UAS challenges.

    Attributes:
        realm: protection space shown to users (RFC 3261 s22.1), e.g. the host name.
        algorithms: offered algorithms, most preferred first; RFC 8760 s2.4 asks for
            SHA-256 before MD5 so that capable clients pick the stronger one.
        nonce_lifetime: seconds a nonce stays valid; after that the client is
            re-challenged with ``stale=true``.
        max_nonces: bound on the nonces remembered for replay protection; the
            oldest are forgotten first (and then count as stale).
    """

    realm: str
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_lifetime: float = 300.0
    max_nonces: int = 10_000

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("DigestConfig.algorithms must not be empty")
        for a in self.algorithms:
            if a not in ALGORITHMS:
                raise ValueError(f"unknown digest algorithm {a!r}; known: {sorted(ALGORITHMS)}")
        if self.nonce_lifetime <= 0 or self.max_nonces <= 0:
            raise ValueError("nonce_lifetime and max_nonces must be positive")


class AuthOutcome(enum.Enum):
    """Result of checking credentials (RFC 3261 s22.1, RFC 2617 s3.2.1/3.2.2)."""

    OK = "ok"
    MISSING = "missing"  # no credentials for our realm: challenge
    MALFORMED = "malformed"  # unparsable header: challenge (or 400)
    STALE = "stale"  # our nonce, expired or forgotten: challenge with stale=true
    BAD_NONCE = "bad-nonce"  # not a nonce we issued: challenge
    REPLAY = "replay"  # nonce-count reused: challenge
    WRONG = "wrong"  # unknown user, bad password, wrong uri/realm/algorithm: challenge


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What :meth:`DigestServer.verify` concluded; ``detail`` says why in words."""

    outcome: AuthOutcome
    username: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK

    @property
    def stale(self) -> bool:
        return self.outcome is AuthOutcome.STALE


@dataclass
class _NonceState:
    issued: float
    last_nc: int = 0


@dataclass
class DigestServer:
    """Challenges and verifies digest credentials for one realm.

    ``ha1_for(username, algorithm)`` returns the user's stored HA1 for that algorithm
    (:func:`ha1`; a ``-sess`` algorithm asks for its base one's), or ``None`` if the user
    is unknown or has none: the server never needs the password itself.  The opaque
    value is fixed per server instance.
    """

    config: DigestConfig
    ha1_for: Callable[[str, str], str | None]
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    opaque: str = field(default_factory=lambda: secrets.token_hex(8))
    _nonces: dict[str, _NonceState] = field(default_factory=dict, init=False, repr=False)

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self.secret, raw, hashlib.sha256).digest()[:_NONCE_MAC_LEN]

    def new_nonce(self, now: float) -> str:
        raw = struct.pack("!d", now) + secrets.token_bytes(12)
        nonce = base64.urlsafe_b64encode(raw + self._mac(raw)).decode("ascii")
        self._forget_old(now)
        self._nonces[nonce] = _NonceState(issued=now)
        return nonce

    def _forget_old(self, now: float) -> None:
        # dicts keep insertion order, which is issue order: drop from the front.
        life = self.config.nonce_lifetime
        while self._nonces:
            first = next(iter(self._nonces))
            state = self._nonces[first]
            if now - state.issued <= life and len(self._nonces) < self.config.max_nonces:
                break
            del self._nonces[first]

    def _nonce_issued(self, nonce: str) -> float | None:
        """Issue time if ``nonce`` was minted with our secret, else ``None``."""
        try:
            blob = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        if len(blob) != 8 + 12 + _NONCE_MAC_LEN:
            return None
        raw, mac = blob[:20], blob[20:]
        if not hmac.compare_digest(mac, self._mac(raw)):
            return None
        issued: float = struct.unpack("!d", raw[:8])[0]
        return issued

    def challenges(self, now: float, *, stale: bool = False) -> list[DigestChallenge]:
        """One challenge per configured algorithm, sharing a fresh nonce (RFC 8760 s2.4)."""
        nonce = self.new_nonce(now)
        return [
            DigestChallenge(
                realm=self.config.realm,
                nonce=nonce,
                algorithm=a,
                qop=("auth",),
                opaque=self.opaque,
                stale=stale,
            )
            for a in self.config.algorithms
        ]

    def verify(
        self,
        method: str,
        headers: list[str],
        now: float,
        *,
        request_uri: str | None = None,
        ha1_for: Callable[[str, str], str | None] | None = None,
    ) -> AuthResult:
        """Check the ``Authorization`` (or ``Proxy-Authorization``) header values.

        ``headers`` are all values of that header; the one for our realm is used
        (RFC 3261 s22.3).  ``request_uri``, when given, must equal the ``uri``
        parameter (RFC 2617 s3.2.2.5).  ``ha1_for`` replaces the server's lookup for
        this check (a conference with several passwords tries each).
        """
        creds: DigestCredentials | None = None
        for value in headers:
            try:
                candidate = DigestCredentials.parse(value)
            except DigestParseError as exc:
                return AuthResult(AuthOutcome.MALFORMED, detail=str(exc))
            if candidate.realm == self.config.realm:
                creds = candidate
                break
        if creds is None:
            return AuthResult(AuthOutcome.MISSING, detail="no credentials for our realm")
        user = creds.username
        if creds.algorithm not in self.config.algorithms:
            return AuthResult(AuthOutcome.WRONG, user, f"algorithm {creds.algorithm} not offered")
        if request_uri is not None and creds.uri != request_uri:
            return AuthResult(AuthOutcome.WRONG, user, "uri parameter differs from Request-URI")
        if creds.opaque != self.opaque:
            return AuthResult(AuthOutcome.WRONG, user, "opaque does not match")
        if creds.qop != "auth" or creds.nc is None or creds.cnonce is None:
            return AuthResult(AuthOutcome.WRONG, user, "qop=auth with nc and cnonce is required")
        issued = self._nonce_issued(creds.nonce)
        if issued is None:
            return AuthResult(AuthOutcome.BAD_NONCE, user, "nonce was not issued by us")
        self._forget_old(now)
        state = self._nonces.get(creds.nonce)
        if state is None or now - issued > self.config.nonce_lifetime:
            return AuthResult(AuthOutcome.STALE, user, "nonce expired")
        stored = (ha1_for or self.ha1_for)(user, creds.algorithm.removesuffix("-sess"))
        if stored is None:
            return AuthResult(AuthOutcome.WRONG, user, "unknown user or no credentials")
        expected = compute_response(
            algorithm=creds.algorithm,
            username=user,
            realm=self.config.realm,
            stored_ha1=stored,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            qop="auth",
            nc=creds.nc,
            cnonce=creds.cnonce,
        )
        if not hmac.compare_digest(expected, creds.response.lower()):
            return AuthResult(AuthOutcome.WRONG, user, "response digest does not match")
        nc = int(creds.nc, 16)
        if nc <= state.last_nc:
            return AuthResult(AuthOutcome.REPLAY, user, f"nonce-count {creds.nc} already used")
        state.last_nc = nc
        return AuthResult(AuthOutcome.OK, user)


# --------------------------------------------------------------------------- SIP glue


def challenge(
    request: Request,
    server: DigestServer,
    now: float,
    *,
    proxy: bool = False,
    stale: bool = False,
    to_tag: str | None = None,
) -> Response:
    """The 401 (or 407 with ``proxy``) answering ``request`` (RFC 3261 s22.1, s22.3),
    one ``WWW-Authenticate``/``Proxy-Authenticate`` per offered algorithm."""
    response = make_response(request, 407 if proxy else 401, to_tag=to_tag or new_tag())
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    for c in server.challenges(now, stale=stale):
        response.headers.add(name, c.to_header())
    return response


def check_request(
    request: Request,
    server: DigestServer,
    now: float,
    *,
    proxy: bool = False,
    ha1_for: Callable[[str, str], str | None] | None = None,
) -> AuthResult:
    """Verify the request's ``Authorization`` (or ``Proxy-Authorization``) header,
    with the Request-URI as the expected ``uri`` (RFC 3261 s22.4); ``ha1_for`` as in
    :meth:`DigestServer.verify`."""
    name = "Proxy-Authorization" if proxy else "Authorization"
    return server.verify(
        request.method,
        request.headers.get_all(name),
        now,
        request_uri=str(request.uri),
        ha1_for=ha1_for,
    )


def authorize_request(
    request: Request,
    response: Response,
    *,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> Request:
    """``request`` again, answering the 401/407 ``response`` (RFC 3261 s22.2).

    Same Call-ID, From, To and body; CSeq + 1; a new branch; an ``Authorization``
    (``Proxy-Authorization`` for 407) for the topmost challenge whose algorithm we
    support (RFC 8760 s2.4 lists the server's preference first).  Raises
    :class:`DigestParseError` if no challenge is usable.
    """
    if response.status not in (401, 407):
        raise DigestParseError(f"{response.status} is not a challenge")
    proxy = response.status == 407
    chosen: DigestChallenge | None = None
    errors: list[str] = []
    for value in response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate"):
        try:
            candidate = DigestChallenge.parse(value)
        except DigestParseError as exc:
            errors.append(str(exc))
            continue
        if not candidate.qop or "auth" in candidate.qop:
            chosen = candidate
            break
    if chosen is None:
        raise DigestParseError("no usable digest challenge: " + "; ".join(errors or ["none"]))
    creds = answer_challenge(
        chosen,
        method=request.method,
        uri=str(request.uri),
        username=username,
        password=password,
        nc=nc,
        cnonce=cnonce,
    )
    retry = Request(request.method, request.uri, request.headers.copy(), request.body)
    h = retry.headers
    h.replace_top_via(request.via[0].with_params(branch=new_branch()))
    h.set("CSeq", f"{request.cseq.number + 1} {request.method}")
    header = "Proxy-Authorization" if proxy else "Authorization"
    kept = [v for v in h.get_all(header) if _realm_of(v) not in (None, chosen.realm)]
    h.remove(header)
    for v in kept:
        h.add(header, v)
    h.add(header, creds.to_header())
    return retry


def _realm_of(value: str) -> str | None:
    try:
        return parse_auth_params(value)[1].get("realm")
    except DigestParseError:
        return None
