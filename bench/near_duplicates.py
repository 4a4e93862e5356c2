"""Near-duplicate detection: precision and recall of duplicate pairs, and the cost of the check.

    .venv/bin/python bench/near_duplicates.py [--stories 700] [--stored 100000] [--seed 7]

1. Generates a corpus of at least 2,000 articles with known near-duplicates: wire stories
   republished with small word edits, a new headline, a cut ending, an added paragraph, or
   several of these together; unrelated stories that share a topic vocabulary; and follow-up
   stories that repeat two background paragraphs of an earlier story (not duplicates). Every
   article goes through the project's own code (near_duplicates.signature, the SQLite LSH
   index, and the DedupePipeline's rule: join the cluster of the most similar stored article).
   Precision and recall are computed over article pairs that share a cluster, for a sweep of
   thresholds, so the threshold in archive/near_duplicates.py is a measured choice.
2. Copies within one site (#20): the same corpus's stories also appear a second time on their own
   site, in another section's template (the same text with a caption, a related-links block or a
   byline line around it, or its last paragraph lost), next to updated versions at a new URL (a
   new lead, a third of the paragraphs rewritten) and follow-ups. Every article goes through the
   project's dedupe decision (archive.dedupe.decide on a real archive); for a sweep of
   COPY_THRESHOLD it reports the precision and recall of the alias decision (a same-site copy
   folded into its original) and of the cluster decision (articles of one story in one cluster;
   copies on other sites must stay articles of their own).
3. Fills an index with --stored articles and times the check for one more article: the
   signature (computed in the extraction worker) and the lookup in SQLite (in the crawl).
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archive.dedupe as dedupe  # noqa: E402 (after the path set-up above)
import archive.near_duplicates as nd  # noqa: E402
from archive.near_duplicates import NearDuplicateIndex, cluster_id_for, signature  # noqa: E402
from archive.schema import open_db  # noqa: E402
from archive.store import Archive  # noqa: E402

SYLLABLES = [
    "ka",
    "lo",
    "mer",
    "ta",
    "vin",
    "so",
    "ra",
    "pel",
    "du",
    "nor",
    "ie",
    "ban",
    "tes",
    "ul",
    "gor",
    "mi",
    "sa",
    "tre",
    "ol",
    "fan",
    "ki",
    "zu",
    "ber",
    "ha",
    "ne",
    "por",
    "li",
    "qua",
    "don",
    "e",
]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


class Corpus:
    """Stories as lists of paragraphs; near-duplicate families share a story id."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.common = vocabulary(self.rng, 6000)
        self.topics = [vocabulary(self.rng, 150) for _ in range(40)]
        self.weights = [1 / (rank + 1) for rank in range(len(self.common))]  # Zipf-like

    def sentence(self, topic: list[str]) -> str:
        n = self.rng.randint(8, 24)
        words = [
            self.rng.choice(topic) if self.rng.random() < 0.25 else w
            for w in self.rng.choices(self.common, self.weights, k=n)
        ]
        return " ".join(words).capitalize() + "."

    def story(self) -> tuple[int, list[str]]:
        topic = self.rng.randrange(len(self.topics))
        paragraphs = [
            " ".join(self.sentence(self.topics[topic]) for _ in range(self.rng.randint(2, 4)))
            for _ in range(self.rng.randint(6, 12))
        ]
        return topic, paragraphs

    def variant(self, paragraphs: list[str], kind: str) -> list[str]:
        rng = self.rng
        if kind == "edit":  # a copy editor's pass: ~5% of words changed
            out = []
            for p in paragraphs:
                words = p.split()
                for i in rng.sample(range(len(words)), k=max(1, len(words) // 20)):
                    words[i] = rng.choice(self.common)
                out.append(" ".join(words))
            return out
        if kind == "cut":  # the ending cut for length
            return paragraphs[: max(3, int(len(paragraphs) * rng.uniform(0.7, 0.85)))]
        if kind == "added":  # a local paragraph or an agency credit added
            return [*paragraphs, self.sentence(self.common), "Additional reporting by our correspondents."]
        if kind == "headline":  # another headline: the body is the same text with a new standfirst
            return [self.sentence(self.common), *paragraphs]
        return self.variant(self.variant(paragraphs, "edit"), "cut")  # "edit+cut"


def build(stories: int, seed: int) -> list[tuple[str, int, str]]:
    """(url, family id, text) for every article; a family is one story and its republications."""
    corpus = Corpus(seed)
    articles = []
    kinds = ["edit", "cut", "added", "headline", "edit+cut"]
    earlier: list[list[str]] = []
    for family in range(stories):
        _, paragraphs = corpus.story()
        if earlier and corpus.rng.random() < 0.2:
            # A follow-up: a new story that repeats two background paragraphs of an earlier one.
            # It is not a duplicate, and the hardest case for precision.
            background = corpus.rng.choice(earlier)
            paragraphs = paragraphs[:3] + corpus.rng.sample(background, k=2) + paragraphs[3:]
        earlier.append(paragraphs)
        articles.append((f"https://wire.example/{family}", family, "\n\n".join(paragraphs)))
        for n in range(corpus.rng.choice([0, 1, 2, 3, 4, 5])):
            kind = corpus.rng.choice(kinds)
            text = "\n\n".join(corpus.variant(paragraphs, kind))
            articles.append((f"https://site{n}.example/{family}/{kind}", family, text))
    corpus.rng.shuffle(articles)
    return articles


def cluster(articles: list[tuple[str, int, str, bytes]], threshold: float, workdir: Path) -> dict[str, int]:
    """The pipeline's rule, on a fresh index at `threshold`: join the most similar article's cluster."""
    nd.THRESHOLD = threshold
    nd.bands.cache_clear()
    db = open_db(workdir / f"t{threshold:.2f}.db")
    index = NearDuplicateIndex(db)
    clusters: dict[str, int] = {}
    for url, _, _, sig in articles:
        matches = index.matches(sig, exclude=url)
        clusters[url] = clusters[matches[0][0]] if matches else cluster_id_for(url)
        index.add(url, sig)
    return clusters


def pairs(groups: dict[str, int]) -> set[tuple[str, str]]:
    members: dict[int, list[str]] = {}
    for url, group in groups.items():
        members.setdefault(group, []).append(url)
    return {tuple(sorted(p)) for urls in members.values() for p in itertools.combinations(urls, 2)}


def quality(stories: int, seed: int) -> float:
    articles = [(url, family, text, signature(text)) for url, family, text in build(stories, seed)]
    truth = pairs({url: family for url, family, _, _ in articles})
    print(f"corpus: {len(articles)} articles, {stories} stories, {len(truth)} true duplicate pairs")
    print(f"{'threshold':>9} {'bands x rows':>12} {'pairs':>7} {'precision':>9} {'recall':>7}")
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        for threshold in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            found = pairs(cluster(articles, threshold, Path(tmp)))
            hits = len(found & truth)
            precision = hits / len(found) if found else 1.0
            recall = hits / len(truth)
            b, r = nd.bands()
            print(f"{threshold:>9.2f} {f'{b} x {r}':>12} {len(found):>7} {precision:>9.4f} {recall:>7.4f}")
            if precision >= 0.99 and (best is None or recall > best[1]):
                best = (threshold, recall)
    print(f"highest recall with precision >= 0.99 at threshold {best[0] if best else 'none'}")
    return best[0] if best else 0.5


def cost(stored: int, seed: int, threshold: float) -> None:
    nd.THRESHOLD = threshold
    nd.bands.cache_clear()
    rng = random.Random(seed)
    corpus = Corpus(seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "cost.db")
        index = NearDuplicateIndex(db)
        # Filled the way the crawl writes (batches of NEWS_STORE_BATCH_SIZE), timing the index's
        # writes, merges of full levels included, per slice of the fill: flat if it does not grow.
        batch, report_every = 200, max(stored // 5, 200)
        started, spent, slice_start = time.perf_counter(), 0.0, 0
        print(f"\nindex write while filling (CPU ms per article, batches of {batch}, merges included):")
        for start in range(0, stored, batch):
            urls = {f"https://stored.example/{n}" for n in range(start, min(stored, start + batch))}
            for url in sorted(urls):
                # Unrelated stored articles have unrelated signatures: random ones stand in for them.
                index.add(url, rng.randbytes(nd.NUM_PERM * 4))
            with db.atomic():
                db.conn.executemany(
                    "INSERT INTO articles (url, source, first_seen_at, last_seen_at) VALUES (?, 's', 't', 't')",
                    [(url,) for url in sorted(urls)],
                )
            before = time.thread_time()  # the commit included: it writes the pages the inserts dirtied
            with db.atomic():
                index.write(urls)
            spent += time.thread_time() - before
            done = start + len(urls)
            if done % report_every == 0 or done == stored:
                print(f"  articles {slice_start + 1:>7,}-{done:<7,} {spent / (done - slice_start) * 1000:.3f} ms")
                spent, slice_start = 0.0, done
        print(f"index filled with {stored} articles in {time.perf_counter() - started:.0f}s")
        texts = ["\n\n".join(corpus.story()[1]) for _ in range(300)]
        started = time.perf_counter()
        sigs = [signature(t) for t in texts]
        sig_ms = (time.perf_counter() - started) / len(texts) * 1000
        started = time.perf_counter()
        for n, sig in enumerate(sigs):
            index.matches(sig, exclude=None)
            index.add(f"https://new.example/{n}", sig)
        lookup_ms = (time.perf_counter() - started) / len(sigs) * 1000
        with db.atomic():
            db.conn.executemany(
                "INSERT INTO articles (url, source, first_seen_at, last_seen_at) VALUES (?, 's', 't', 't')",
                [(f"https://new.example/{n}",) for n in range(len(sigs))],
            )
        started = time.perf_counter()
        with db.atomic():  # what Archive.write adds for these articles: signatures and band rows
            index.write({f"https://new.example/{n}" for n in range(len(sigs))})
        write_ms = (time.perf_counter() - started) / len(sigs) * 1000
        # The whole dedupe decision (archive.dedupe.decide: stored URL, same body on the site, near
        # matches once for the copy and the cluster rules) for 300 more new articles.
        archive = Archive(db)
        items = [
            BenchItem(url=f"https://www.other{n % 7}.com/{n}", text=t, signature=signature(t))
            for n, t in enumerate(texts)
        ]
        started = time.perf_counter()
        for item in items:
            dedupe.decide(archive, item)
        decide_ms = (time.perf_counter() - started) / len(items) * 1000
    print(
        f"per article with {stored} stored: signature {sig_ms:.2f} ms (extraction worker), "
        f"lookup {lookup_ms:.2f} ms + index write {write_ms:.2f} ms (crawl process) "
        f"= {lookup_ms + write_ms:.2f} ms added to the crawl (the write without a merge; merges are in the fill)"
    )
    print(
        f"the whole dedupe decision (copy and cluster rules) per new article with {stored} stored: {decide_ms:.2f} ms"
    )


# Same-site variants: (kind, is a copy of the original). A copy is the same text in another
# template, as extraction returns it from there; the others are stories of their own on the site.
SAME_SITE_KINDS = [("template", True), ("template_cut", True), ("template_related", True), ("update", False)]


def same_site_variant(corpus: Corpus, paragraphs: list[str], kind: str) -> list[str]:
    rng = corpus.rng
    if kind == "template":  # a caption and a "read more" line that the other template's extraction keeps
        return [corpus.sentence(corpus.common), *paragraphs, "Read more: " + corpus.sentence(corpus.common)]
    if kind == "template_cut":  # the other template's extraction loses the last paragraph
        return [corpus.sentence(corpus.common), *paragraphs[:-1]]
    if kind == "template_related":  # a byline line on top, three related headlines below
        return ["By our staff, updated today.", *paragraphs, *(corpus.sentence(corpus.common) for _ in range(3))]
    # "update": the story republished at a new URL with a new lead and a third of it rewritten
    out = [corpus.sentence(corpus.common) + " " + corpus.sentence(corpus.common), *paragraphs]
    for i in rng.sample(range(1, len(out)), k=max(1, len(out) // 3)):
        out[i] = " ".join(corpus.sentence(corpus.common) for _ in range(3))
    return out


def build_sites(stories: int, seed: int) -> list[tuple[str, int, bool, str]]:
    """(url, family, is a same-site copy, text): build()'s articles, each original also given one
    variant on its own site (a copy or an update; a follow-up is a family of its own already)."""
    corpus = Corpus(seed + 1)
    # Registered domains, so that the site rule sees one site per host (".example" is no public suffix).
    out = [
        (
            re.sub(r"^https://(site\d+)\.example/", r"https://www.\1.com/", url.replace("wire.example", "wire.co.uk")),
            family,
            False,
            text,
        )
        for url, family, text in build(stories, seed)
    ]
    for url, family, _, text in list(out):
        if url.startswith("https://wire.co.uk/"):
            kind, is_copy = corpus.rng.choice(SAME_SITE_KINDS)
            variant = same_site_variant(corpus, text.split("\n\n"), kind)
            out.append((f"https://www.wire.co.uk/{kind}/{family}", family, is_copy, "\n\n".join(variant)))
    corpus.rng.shuffle(out)
    return out


@dataclass
class BenchItem:
    """What archive.dedupe.decide reads and writes (crawl.items.ArticleItem's dedupe fields)."""

    url: str
    text: str
    signature: bytes
    title: str | None = "t"
    authors: list[str] = field(default_factory=list)
    published_at: str | None = None
    modified_at: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    body_hash: str = ""
    status: str = ""
    duplicate_of: str | None = None
    replaces: str | None = None
    first_seen_at: str | None = None
    previous: dict[str, Any] | None = None
    version: int = 1
    cluster_id: int | None = None
    copy_similarity: float | None = None


def copies(stories: int, seed: int) -> None:
    articles = [
        (url, family, is_copy, signature(text), text) for url, family, is_copy, text in build_sites(stories, seed)
    ]
    family_of = {url: family for url, family, _, _, _ in articles}
    original_of = {family: url for url, family, _, _, _ in articles if url.startswith("https://wire.co.uk/")}
    copy_pairs = [{url, original_of[family]} for url, family, is_copy, _, _ in articles if is_copy]
    true_copies = sum(is_copy for _, _, is_copy, _, _ in articles)
    stories_pairs = pairs(family_of)
    print(f"\ncopies within a site: {len(articles)} articles, {true_copies} same-site copies of a stored story")
    print(
        f"{'copy threshold':>14} {'aliases':>7} {'precision':>9} {'recall':>7} {'cluster precision':>17} {'recall':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for threshold in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            dedupe.COPY_THRESHOLD = threshold
            archive = Archive(open_db(Path(tmp) / f"c{threshold:.2f}.db"))
            right = wrong = 0
            clusters: dict[str, int] = {}
            folded: dict[str, str] = {}
            for url, _, _, sig, text in articles:
                item = BenchItem(url=url, text=text, signature=sig)
                dedupe.decide(archive, item)
                if item.status == "duplicate" and item.duplicate_of is not None:
                    folded[url] = item.duplicate_of
                    pair = {url, item.duplicate_of}
                    right, wrong = (right + 1, wrong) if pair in copy_pairs else (right, wrong + 1)
                elif item.cluster_id is not None:
                    clusters[url] = item.cluster_id
            # An alias counts in its article's cluster for the cluster decision.
            for alias, url in folded.items():
                if url in clusters:
                    clusters[alias] = clusters[url]
            found = pairs(clusters)
            hits = len(found & stories_pairs)
            aliases = right + wrong
            cluster_precision, cluster_recall = hits / len(found) if found else 1, hits / len(stories_pairs)
            print(
                f"{threshold:>14.2f} {aliases:>7} {right / aliases if aliases else 1:>9.4f} "
                f"{right / true_copies:>7.4f} {cluster_precision:>17.4f} {cluster_recall:>7.4f}"
            )
            archive.close()
    dedupe.COPY_THRESHOLD = SHIPPED_COPY_THRESHOLD


SHIPPED_COPY_THRESHOLD = dedupe.COPY_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=700, help="story families (about 3.5 articles each)")
    parser.add_argument("--stored", type=int, default=100_000, help="articles in the index for the cost check")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    shipped = nd.THRESHOLD
    quality(args.stories, args.seed)
    print(f"threshold shipped in archive/near_duplicates.py: {shipped}")
    nd.THRESHOLD = shipped
    nd.bands.cache_clear()
    copies(args.stories, args.seed)
    print(f"copy threshold shipped in archive/dedupe.py: {SHIPPED_COPY_THRESHOLD}")
    cost(args.stored, args.seed, shipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
