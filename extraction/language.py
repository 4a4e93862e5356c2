"""The article's language: what the page declares, checked against what its text is written in.

py3langid (a naive Bayes model over byte n-grams, 97 languages, shipped inside the package)
identifies the text. The declared language stands unless the text is long enough and the model
is confident it is another language that is not a close relative (Danish text on a page that
says Norwegian is left alone; Zulu text on a page that says English is not).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# ISO 639-2/3 codes some pages use, to their ISO 639-1 form.
_THREE_LETTER = {
    "eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it",
    "por": "pt", "nld": "nl", "dut": "nl", "pol": "pl", "ces": "cs", "cze": "cs", "slk": "sk",
    "slo": "sk", "swe": "sv", "dan": "da", "nor": "no", "nob": "nb", "nno": "nn", "fin": "fi",
    "tur": "tr", "rus": "ru", "ukr": "uk", "jpn": "ja", "zho": "zh", "chi": "zh", "kor": "ko",
    "ara": "ar", "heb": "he", "hin": "hi", "ind": "id", "msa": "ms", "may": "ms", "vie": "vi",
    "tha": "th", "ell": "el", "gre": "el", "hun": "hu", "ron": "ro", "rum": "ro", "bul": "bg",
    "hrv": "hr", "srp": "sr", "slv": "sl", "lit": "lt", "lav": "lv", "est": "et", "isl": "is",
    "ice": "is", "cat": "ca", "eus": "eu", "baq": "eu", "glg": "gl", "zul": "zu", "xho": "xh",
    "swa": "sw", "afr": "af", "fas": "fa", "per": "fa", "urd": "ur", "ben": "bn", "tam": "ta",
    "kal": "kl", "ltz": "lb", "mlt": "mt", "gle": "ga", "cym": "cy", "wel": "cy",
}  # fmt: skip
_OLD_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv"}
# Languages the model confuses with each other more often than pages mislabel them.
_FAMILIES = [
    {"no", "nb", "nn", "da", "sv"},
    {"hr", "sr", "bs", "sh", "sl", "mk", "bg"},
    {"ms", "id", "jv"},
    {"cs", "sk"},
    {"es", "gl", "pt", "ca", "oc", "an"},
    {"zu", "xh"},
    {"hi", "mr", "ne"},
    {"ru", "uk", "be"},
    {"nl", "af", "fy"},
    {"de", "lb"},
    {"fr", "wa", "br"},
    {"zh", "ja"},
]
MIN_TEXT_CHARS = 200  # below this the model's answer is too unsure to overrule a declaration
OVERRULE_CONFIDENCE = 0.95  # normalised probability the text must reach to overrule the page
SAMPLE_CHARS = 1000  # the model reads at most this much: more only costs time


def normalize(value: Any) -> str | None:
    """The ISO 639-1 code of a language tag or locale ("en-GB", "de_DE", "eng" -> "en", "de", "en")."""
    if not isinstance(value, str):
        return None
    primary = re.split(r"[-_\s]", value.strip().lower())[0]
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        return None
    primary = _THREE_LETTER.get(primary, primary)
    primary = _OLD_CODES.get(primary, primary)
    return primary if len(primary) == 2 else None


def related(first: str, second: str) -> bool:
    return first == second or any(first in family and second in family for family in _FAMILIES)


@functools.cache
def _identifier() -> LanguageIdentifier:
    # Loaded once per process (about 0.5 s), on first use rather than at import.
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> tuple[str | None, float]:
    """The language of `text` and the model's confidence (0 to 1); (None, 0.0) for no text."""
    sample = text[:SAMPLE_CHARS]
    if not any(ch.isalpha() for ch in sample):
        return None, 0.0
    language, confidence = _identifier().classify(sample)
    return normalize(language), float(confidence)


def choose_language(declared: list[tuple[str, Any]], text: str) -> tuple[str | None, str | None]:
    """The language and where it came from, given the page's declarations (in order of trust)
    and the article text (title and body)."""
    stated = [(origin, code) for origin, code in ((o, normalize(v)) for o, v in declared) if code]
    detected, confidence = detect(text)
    if not stated:
        if detected and (confidence >= 0.5 or len(text) >= MIN_TEXT_CHARS):
            return detected, "content"
        return None, None
    origin, code = stated[0]
    if detected and detected != code:
        # Another declaration that agrees with the text settles a disagreement among declarations.
        for other_origin, other in stated[1:]:
            if other == detected:
                return other, other_origin
        if len(text) >= MIN_TEXT_CHARS and confidence >= OVERRULE_CONFIDENCE and not related(detected, code):
            return detected, f"content (page said {code})"
    return code, origin
