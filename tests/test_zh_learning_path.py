"""docs/zh/README.md, the learning path in Chinese: the same commands and the same
derivations as the README's learning path, and every link it holds leads to a file."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "docs" / "zh" / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
COMMAND = re.compile(r"`(python [^`]+)`")


def learning_path():
    """The README's section '## Learning path', up to the next section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Learning path")
    return text[start:text.index("\n## ", start + 1)]


def test_the_chinese_learning_path_runs_the_same_commands():
    commands = COMMAND.findall(learning_path())
    assert len(commands) >= 6
    zh = ZH.read_text(encoding="utf-8")
    assert [c for c in commands if c not in zh] == []


def test_the_chinese_learning_path_links_the_same_derivations():
    english = {(ROOT / target).resolve() for target, _ in LINK.findall(learning_path())
               if target.startswith("docs/") and target.endswith(".md") and "/zh/" not in target}
    chinese = {(ZH.parent / target).resolve() for target, _ in LINK.findall(ZH.read_text("utf-8"))}
    assert len(english) >= 10 and english - chinese == set()


def test_every_link_of_the_chinese_page_leads_to_a_file_and_it_is_linked_back():
    targets = [target for target, _ in LINK.findall(ZH.read_text(encoding="utf-8"))
               if "://" not in target]
    assert targets and [t for t in targets if not (ZH.parent / t).exists()] == []
    for index in (ROOT / "README.md", ROOT / "docs" / "README.md"):
        assert "zh/README.md" in index.read_text(encoding="utf-8"), index
