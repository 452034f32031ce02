"""The report's text helpers: mean ± std strings and Markdown tables sized for the PDF."""

from __future__ import annotations

from report import analysis

NBSP = "\u00a0"


def test_mean_std_breaks_only_before_the_plus_minus():
    assert analysis.mean_std((0.12345, 0.00123)) == f"0.1235 ±{NBSP}0.0012"
    assert analysis.mean_std((0.96432, 0.00123), percent=True) == f"96.43 ±{NBSP}0.12{NBSP}%"
    assert analysis.mean_std((7.5, 1.25), digits=1) == f"7.5 ±{NBSP}1.2"


def test_table_widths_give_every_column_its_longest_word():
    columns = [["configuration", "2c: sigmoid, uniform init", "3c: + momentum (Task 3 net)"],
               ["parameters", "50,880", "101,760"],
               ["best val. loss", f"0.2934 ±{NBSP}0.0067", f"0.1169 ±{NBSP}0.0023"]]
    widths = analysis.table_widths(columns, budget=40)
    assert widths[0] >= len("configuration") and widths[1] >= len("parameters")
    assert widths[2] >= len(f"±{NBSP}0.0067")
    assert abs(sum(widths) - 40) <= len(columns)  # the spare room is shared out (rounding aside)
    # the column whose entries are longest beyond their longest word gets the most spare room
    least = [13, 10, 8]
    spare = [w - m for w, m in zip(widths, least)]
    assert spare[0] > spare[2] > spare[1] == 0


def test_table_widths_without_room_fall_back_to_the_longest_words():
    columns = [["a b", "unbreakable-word"], ["c", "another-long-word"]]
    assert analysis.table_widths(columns, budget=10) == [16, 17]


def test_markdown_table_separator_uses_the_widths():
    rows = [dict(name="3c: + momentum (Task 3 net)",
                 acc=analysis.mean_std((0.962, 0.0044), percent=True))]
    table = analysis.markdown_table(rows, {"name": "configuration", "acc": "best val. accuracy"})
    header, separator, row = table.split("\n")
    assert header == "| configuration | best val. accuracy |"
    dashes = [len(part) for part in separator.strip("|").split("|")]
    assert dashes == analysis.table_widths([["configuration", rows[0]["name"]],
                                           ["best val. accuracy", rows[0]["acc"]]])
    assert row == f"| 3c: + momentum (Task 3 net) | 96.20 ±{NBSP}0.44{NBSP}% |"
