"""A combinatorial corpus of hostile paths: templates (where a payload goes) × payloads
(what a traversal, encoding, Unicode or length trick looks like).

Every entry is a path *template*: ``{b}`` stands for the entry's own fresh directory in
acme (``/tenants/acme/n/<i>``), ``{u}`` for a unique tag, so that no two entries can
collide once they are accepted and each one can be driven through a full file life cycle.

Each entry carries what it must do, decided here from the kind of payload and the kind of
template — independently of :func:`nexus.paths.normalize`, which the fuzz test then checks:

- ``reject``: refused with ``InvalidPathError`` (``invalid_path``) on every method;
- ``accept``: accepted, and its normal form is the NFC spelling of the input (minus a
  trailing slash), strictly inside acme;
- ``any``: a policy choice, but if accepted its normal form must be safe (canonical, no
  dot segments, no look-alike separators) and any call outside acme refused.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["BASE", "Hostile", "PAYLOADS", "TEMPLATES", "build_corpus"]

#: Where entry ``i`` lives (its own directory, created by its first accepted write).
BASE = "/tenants/acme/n/{i}"

REJECT, ACCEPT, ANY = "reject", "accept", "any"


@dataclass(frozen=True, slots=True)
class Payload:
    id: str
    text: str
    #: ``bad``: contains a character no path may hold (refused in any position);
    #: ``dotseg``: is or contains a ``.``/``..`` segment (refused where it forms whole
    #: segments); ``literal``: an ordinary name in disguise (percent-encoding, trailing
    #: dots, Windows device names…), kept byte for byte; ``nfd``: decomposed Unicode,
    #: accepted as its NFC form; ``any``: look-alikes that do not fold, lengths, slashes.
    kind: str


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    pattern: str
    #: The payload stands as whole segment(s) (so a dot payload makes a dot segment).
    whole: bool
    #: The path stays under ``{b}`` unless the payload itself traverses.
    in_acme: bool


@dataclass(frozen=True, slots=True)
class Hostile:
    """One corpus entry; :meth:`path` gives the concrete path for slot ``i``."""

    template: str
    payload: str
    pattern: str
    expect: str

    @property
    def id(self) -> str:
        return f"{self.template}/{self.payload}"

    def path(self, i: int) -> str:
        base = BASE.format(i=i)
        return self.pattern.replace("{b}", base).replace("{u}", f"u{i}")

    def base(self, i: int) -> str:
        return BASE.format(i=i)


def _c(cp: int) -> str:
    return chr(cp)


def _payloads() -> list[Payload]:
    out: list[Payload] = []

    def add(kind: str, prefix: str, texts: list[str]) -> None:
        for n, text in enumerate(texts):
            out.append(Payload(f"{prefix}{n}", text, kind))

    # -- dot segments in every shape -------------------------------------------------
    add("dotseg", "dot", [".", "..", "./.", "../..", "../", "./", "../beta", "../../beta",
                          "../../../tenants/beta", "../../../../tenants/beta",
                          "..//..", "x/../..", ".../..", "./..", "../.", "../x/..",
                          "../" * 8 + "etc/passwd"])
    # -- dots that are names, trailing dots and spaces ----------------------------------
    add("literal", "dotname", ["...", "....", ". .", ".x", "x.", "..x", "x..", ".. ", " ..",
                               ". ", " .", "._.", "x...", "x ", "x  ", "x. ", "x .",
                               "x\u00a0", "x\u3000", "\u00a0..", "..\u00a0", "con.",
                               "nul ", "... "])
    # -- percent-encoding (single, double, overlong UTF-8, %u), never decoded ------------
    add("literal", "pct", [
        "%2e", "%2E", "%2e%2e", "%2E%2E", "%2e.", ".%2e", "%2e%2e%2f", "..%2f", "..%2F",
        "%2f", "%2F", "%5c", "%5C", "..%5c", "%2e%2e%5c", "%252e", "%252e%252e", "%252f",
        "%255c", "%25252e%25252e", "%%32%65", "%%32%65%%32%65", "%c0%ae", "%c0%ae%c0%ae",
        "%c0%af", "%c1%9c", "%e0%80%ae", "%e2%80%a4", "%ef%bc%8e", "%u002e",
        "%u002e%u002e", "%uff0e", "%u2215", "%00", "..%00", "%2e%2e%00", "..%252f",
        "%2e%2e%2f%2e%2e%2ftenants%2fbeta", "..%2f..%2ftenants%2fbeta",
        "%2e%2e%5c%2e%2e%5cbeta", "..;", ";..", "..%3b", "%3f", "%23", "%0a",
        "%0d%0a", "%09", "a+b", "%2B", "%20", "%",
    ])
    # -- characters NFKC folds into '.', '/' or '\', and slash look-alikes ---------------
    confusables = [0x2024, 0x2025, 0x2026, 0xFE52, 0xFF0E, 0xFF0F, 0xFF3C, 0x2215, 0x2044,
                   0x29F8, 0xFE68, 0xFE19, 0xFE30]
    add("bad", "conf", [_c(cp) for cp in confusables])
    add("bad", "confmix", [
        "\u2024\u2024", ".\u2024", "\u2024.", "\uff0e\uff0e", "\uff0e.", ".\uff0e",
        "..\uff0f", "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fbeta", "..\u2215..\u2215beta",
        "\u2025\u2215beta", "..\u29f8beta", "..\uff3c..\uff3cbeta", "\ufe52\ufe52",
        "\ufe52\ufe52\u2215", "\u2025\uff0ftenants\uff0fbeta", "x\u2215..",
        "\u2024\u2024\u2215\u2024\u2024\u2215tenants\u2215beta",
    ])
    # -- look-alikes that do not fold (a policy choice: anything safe goes) -------------
    add("any", "alike", ["\u3002\u3002", "\uff61\uff61", "\u2e2e", "\u00b7\u00b7",
                         "\u2027\u2027", "\u0701", "\u2e31", "\u2216", "\u29f5", "\u29f9",
                         ".\u0338", "..\u0338", "\u0338"])
    # -- decomposed (NFD) spellings, and characters NFC itself rewrites ------------------
    add("nfd", "nfd", ["e\u0301", "cafe\u0301", "A\u030a", "n\u0303", "o\u0308",
                       "\u1100\u1161", "u\u0308ber", "e\u0301" * 3, ".e\u0301",
                       "e\u0301.", "I\u0307", "\u212b", "\u212a", "\u2126", "\u0958",
                       "\u00e9", "\u00c5", "a\u0308\u0301"])
    # -- NUL, C0, DEL, C1 ----------------------------------------------------------------
    add("bad", "nul", ["\x00", "..\x00", "\x00..", "x\x00.txt"])
    add("bad", "c0-", [_c(cp) for cp in range(0x01, 0x20)])
    add("bad", "del", ["\x7f"])
    add("bad", "c1-", [_c(cp) for cp in range(0x80, 0xA0)])
    # -- zero-width, bidi controls and other invisible format characters -----------------
    fmt = [0x00AD, 0x061C, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B,
           0x202C, 0x202D, 0x202E, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0x2066, 0x2067,
           0x2068, 0x2069, 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB, 0xE0001, 0xE0041]
    add("bad", "fmt", [_c(cp) for cp in fmt])
    add("bad", "fmtmix", ["..\u200b", "\u200b..", ".\u200d.", "\ufeff..", "\u202e..",
                          "invoice\u202efdp.exe", "\u2066..\u2069", "..\u200b/beta"])
    # -- surrogates, private use, non-characters -------------------------------------------
    add("bad", "cs", ["\ud800", "\udfff", "a\udc80b", "\ue000", "\U000f0000", "\uffff",
                      "\ufdd0"])
    # -- backslashes (MinIO CVE-2023-28433 style) ----------------------------------------
    add("bad", "bs", ["\\", "..\\", "\\..", "..\\..\\beta", "..\\..\\tenants\\beta",
                      "a\\b", "\\\\server\\share", "C:\\Windows", "..\\/", ".\\."])
    # -- empty segments and slashes --------------------------------------------------------
    add("any", "slash", ["", "/", "//", "/x", "x/", "x//", "/./", "/../"])
    # -- lengths (255/256-byte segments in 1-4 byte characters, NFC growth, deep paths) --
    add("any", "len", ["a" * 255, "a" * 256, "\u00e9" * 127, "\u00e9" * 128,
                       "\u20ac" * 85, "\u20ac" * 86, "\U0001f600" * 63, "\U0001f600" * 64,
                       "e\u0301" * 127, "e\u0301" * 128, "\u0958" * 40, "\u0958" * 50,
                       "/".join(["a" * 250] * 17), "a/" * 2100, "../" * 1400,
                       "x" * 4097])
    # -- Windows device names, shell/SQL metacharacters, confusing but ordinary names ----
    add("literal", "plain", ["CON", "NUL", "PRN.txt", "x::$DATA", "x:y", "C:", "*", "?",
                             "<>", "|", "~", "~root", "$HOME", "'; DROP TABLE files; --",
                             "${jndi:ldap:x}", "%n%s", "\u0130", "\u00df", "\ufb01",
                             "\U0001f4a9", "-rf", "@acme", "#frag", "a?b=c&d", "tenants",
                             "beta", " ", "\u2028", "\u2029", "a&path=/tenants/beta"])
    return out


def _templates() -> list[Template]:
    return [
        # inside the entry's own directory in acme
        Template("last", "{b}/{p}", whole=True, in_acme=True),
        Template("mid", "{b}/{p}/f", whole=True, in_acme=True),
        Template("twice", "{b}/{p}/{p}", whole=True, in_acme=True),
        Template("beta", "{b}/{p}/tenants/beta/f", whole=True, in_acme=True),
        Template("deep", "{b}/{p}/{p}/{p}/{p}/{p}/tenants/beta/f", whole=True, in_acme=True),
        Template("prefix", "{b}/{p}x", whole=False, in_acme=True),
        Template("suffix", "{b}/x{p}", whole=False, in_acme=True),
        Template("infix", "{b}/a{p}b", whole=False, in_acme=True),
        # the tenant segment and the root: escapes to beta and the system partition
        Template("tenant-suffix", "/tenants/acme{p}beta-{u}", whole=False, in_acme=False),
        Template("tenant-seg", "/tenants/{p}/beta-{u}", whole=True, in_acme=False),
        Template("root-seg", "/{p}/tenants/beta/x-{u}", whole=True, in_acme=False),
        Template("in-beta", "/tenants/beta/{p}-{u}", whole=False, in_acme=False),
    ]


PAYLOADS = _payloads()
TEMPLATES = _templates()

#: Which templates each payload group goes through. Rejections are cheap, so refused
#: characters go everywhere that changes the question (a segment, inside a segment, the
#: tenant segment, another tenant's directory); accepted names each cost a full file life
#: cycle, so they get the placements where decoding or folding would change the target.
_ALL = tuple(t.id for t in TEMPLATES)
_GROUP_TEMPLATES: dict[str, tuple[str, ...]] = {
    # one refused character at a time
    "conf": ("last", "mid", "infix", "tenant-seg", "in-beta"),
    "c0-": ("last", "mid", "infix", "tenant-seg", "in-beta"),
    "c1-": ("last", "mid", "infix", "tenant-seg", "in-beta"),
    "fmt": ("last", "mid", "infix", "tenant-seg", "in-beta"),
    "cs": ("last", "mid", "infix", "tenant-seg", "in-beta"),
    "del": _ALL,
    # composite traversals: every position
    "nul": _ALL, "confmix": _ALL, "fmtmix": _ALL, "bs": _ALL, "dot": _ALL, "slash": _ALL,
    # names in disguise: as a name, and as a step towards beta; plus every escape route
    "pct": ("last", "beta", "tenant-suffix", "tenant-seg", "root-seg", "in-beta"),
    "dotname": ("last", "suffix", "tenant-seg", "in-beta"),
    "plain": ("last", "tenant-seg", "in-beta"),
    "nfd": ("last", "mid", "tenant-seg", "in-beta"),
    "alike": ("last", "mid", "infix", "tenant-seg", "root-seg", "in-beta"),
    "len": ("last", "mid", "suffix", "tenant-seg"),
}


def _expect(payload: Payload, template: Template) -> str:
    if payload.kind == "bad":
        return REJECT
    if payload.kind == "dotseg":
        return REJECT if template.whole else ANY
    if payload.kind in ("literal", "nfd"):
        return ACCEPT if template.in_acme else ANY
    return ANY


def build_corpus() -> list[Hostile]:
    """Every (template, payload) pair, deduplicated on the resulting path pattern."""
    out: list[Hostile] = []
    seen: set[str] = set()
    for template in TEMPLATES:
        for payload in PAYLOADS:
            group = payload.id.rstrip("0123456789")
            if template.id not in _GROUP_TEMPLATES[group]:
                continue
            pattern = template.pattern.replace("{p}", payload.text)
            if pattern in seen:
                continue
            seen.add(pattern)
            out.append(Hostile(template.id, payload.id, pattern, _expect(payload, template)))
    return out


def expected_normal(entry: Hostile, i: int) -> str:
    """The normal form an ``accept`` entry must have: NFC, trailing slashes dropped."""
    return unicodedata.normalize("NFC", entry.path(i)).rstrip("/")
