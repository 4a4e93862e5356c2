"""Whether a page is a bot challenge or an access-denied page served in place of the article.

Sites that start refusing crawlers often answer 200 with an interstitial ("Just a moment...",
"Checking your browser", a CAPTCHA) rather than 403: the page is short, so it would only count as
"not an article". Naming it lets source health (archive/health_verdict.py) call the source blocked.
"""

from __future__ import annotations

import re

# Phrases of the interstitials that the big bot-protection services and common CAPTCHA walls show;
# matched case-insensitively in the title and the first part of the text.
CHALLENGE_PHRASES = (
    "just a moment...",
    "checking your browser",
    "checking if the site connection is secure",
    "verify you are human",
    "verifying you are human",
    "are you a robot",
    "please complete the security check",
    "enable javascript and cookies to continue",
    "attention required!",
    "access denied",
    "request unsuccessful. incapsula",
    "pardon our interruption",
    "captcha",
)
_PATTERN = re.compile("|".join(re.escape(phrase) for phrase in CHALLENGE_PHRASES), re.IGNORECASE)
# Only the start of a body is read: an article that quotes "access denied" further down is no challenge.
HEAD_CHARS = 400


def challenge_phrase(title: str | None, text: str | None) -> str | None:
    """The challenge phrase the page shows in its title or at the start of its text, or None."""
    for part in (title or "", (text or "")[:HEAD_CHARS]):
        if found := _PATTERN.search(part):
            return found.group(0)
    return None
