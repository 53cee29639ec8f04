"""The schema restore list: extensions the target server lacks are left out, nothing else."""

from __future__ import annotations

from ladder.replica.schema import leave_out_extensions

TOC = """\
;
; Selected TOC Entries:
;
6; 2615 2200 SCHEMA - app postgres
3512; 0 0 COMMENT - SCHEMA public postgres
2; 3079 20216 EXTENSION - citext
3506; 0 0 COMMENT - EXTENSION citext
4; 3079 20400 EXTENSION - pg_cron
3508; 0 0 COMMENT - EXTENSION pg_cron
5; 3079 20500 EXTENSION - aws_s3
924; 1247 20403 TYPE public mood postgres
217; 1259 20412 TABLE public people postgres
"""


def test_unavailable_extensions_and_their_comments_are_commented_out() -> None:
    toc, left_out = leave_out_extensions(TOC, {"citext", "plpgsql"})
    assert left_out == ["pg_cron", "aws_s3"]
    kept = [line for line in toc.splitlines() if line and not line.startswith(";")]
    assert kept == [
        "6; 2615 2200 SCHEMA - app postgres",
        "3512; 0 0 COMMENT - SCHEMA public postgres",
        "2; 3079 20216 EXTENSION - citext",
        "3506; 0 0 COMMENT - EXTENSION citext",
        "924; 1247 20403 TYPE public mood postgres",
        "217; 1259 20412 TABLE public people postgres",
    ]
    assert ";4; 3079 20400 EXTENSION - pg_cron" in toc.splitlines()


def test_nothing_is_left_out_when_the_server_has_every_extension() -> None:
    toc, left_out = leave_out_extensions(TOC, {"citext", "pg_cron", "aws_s3"})
    assert left_out == []
    assert toc == TOC
