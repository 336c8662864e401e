"""Memory and knowledge-base commands: ``kb``, ``memory`` and ``eval memory``.

::

    llmos kb add PATH... [--user U]      files and folders (.txt .md .html .pdf)
    llmos kb list [--user U]             shared documents and every user's (or U's), by scope
    llmos kb remove PATH... | kb search TEXT
    llmos memory search TEXT [--user U] | memory list [--user U] | memory forget --user U
    llmos eval memory --locomo FILE [--json] [--answer] [--limit N] [--ablation]

The knowledge base has scopes: shared documents (every user's answers draw on them) and each
user's own (attached in the TUI, ``kb add --user U`` or the server: only that user's answers
draw on them). ``kb add``, ``kb remove`` and ``kb search`` work on the shared scope unless
``--user`` names a user; ``kb list`` shows every scope, or with ``--user`` the shared one and
that user's; the memory commands default to the user
``local``, the one ``llmos ask`` and ``llmos chat`` use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

from agent.cli.common import add_config_arg, config_from_args
from agent.errors import InputError

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add the ``kb``, ``memory`` and ``eval memory`` commands."""
    _register_kb(groups.top)
    _register_memory(groups.top)
    ev = groups.eval.add_parser("memory", help="evidence recall of the memory store on LoCoMo",
                                description="Store each LoCoMo conversation, search for every question of "
                                            "categories 1-4 and report evidence recall@5/@10.")
    ev.add_argument("--locomo", required=True, metavar="FILE", help="a LoCoMo JSON file (e.g. locomo10.json)")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ev.add_argument("--answer", action="store_true",
                    help="also answer each question with the configured model and report token F1 (slow)")
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N questions of each conversation")
    ev.add_argument("--ablation", action="store_true",
                    help="report plain dense search and each addition (hybrid, session dates, query rewriting)")
    ev.add_argument("--write-policy", choices=("all", "statements"), default="all",
                    help="which turns are stored: all (default: the benchmark's usual set-up), or statements only, "
                         "as the agent's memory.remember: statements keeps them (questions and requests left out)")
    add_config_arg(ev)
    ev.set_defaults(func=_eval_memory)


def _register_kb(top: Any) -> None:
    kb = top.add_parser("kb", help="the knowledge base: documents recalled with citations")
    sub = kb.add_subparsers(dest="kb_command", metavar="ACTION")
    sub.required = True
    user_help = "a user's own documents (default: the shared knowledge base every user sees)"

    add = sub.add_parser("add", help="add files and folders (.txt .md .html .pdf)")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--no-progress", action="store_true", help="no progress bar")
    ls = sub.add_parser("list", help="the documents in the knowledge base, by scope (shared, each user's)")
    ls.add_argument("--json", action="store_true")
    rm = sub.add_parser("remove", help="remove documents (a file, or all under a folder)")
    rm.add_argument("paths", nargs="+", metavar="PATH")
    search = sub.add_parser("search", help="passages relevant to TEXT, with citations")
    search.add_argument("text")
    search.add_argument("-k", type=int, default=5, help="how many passages (default 5)")
    search.add_argument("--json", action="store_true")
    for parser, handler in ((add, _kb_add), (ls, _kb_list), (rm, _kb_remove), (search, _kb_search)):
        parser.add_argument("--user", default=None, help=user_help)
        add_config_arg(parser)
        parser.set_defaults(func=handler)


def _register_memory(top: Any) -> None:
    mem = top.add_parser("memory", help="what the agent remembers about a user: search, list, forget")
    sub = mem.add_subparsers(dest="memory_command", metavar="ACTION")
    sub.required = True
    search = sub.add_parser("search", help="a user's memories relevant to TEXT")
    search.add_argument("text")
    search.add_argument("-k", type=int, default=5, help="how many memories (default 5)")
    search.add_argument("--kinds", help="comma-separated kinds to search: turn,fact,document (default: all)")
    search.add_argument("--json", action="store_true")
    search.add_argument("--user", default="local", help="user id (default: local)")
    ls = sub.add_parser("list", help="a user's memories, newest first")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--user", default="local", help="user id (default: local)")
    forget = sub.add_parser("forget", help="delete everything remembered about a user")
    forget.add_argument("--user", required=True, help="the user to forget (required: there is no undo)")
    delete = sub.add_parser("delete", help="delete single memories by id (see `memory list`)")
    delete.add_argument("ids", nargs="+", type=int, metavar="ID")
    delete.add_argument("--user", default="local", help="user id (default: local)")
    for parser, handler in ((search, _memory_search), (ls, _memory_list), (forget, _memory_forget),
                            (delete, _memory_delete)):
        add_config_arg(parser)
        parser.set_defaults(func=handler)


# -- helpers ----------------------------------------------------------------------------------

def _open_store(args: argparse.Namespace) -> Any:
    from memory import build_store

    config = config_from_args(args)
    return build_store(config.memory, data_dir=config.resolved_data_dir() / "memory")


def _print_hits(hits: Sequence[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([_hit_json(h) for h in hits], ensure_ascii=False))
        return
    if not hits:
        print("nothing found")
    for hit in hits:
        where = f"  [{hit.citation}]" if hit.citation else ""
        print(f"{hit.id:>7}  {hit.score:.3f}  {hit.kind:<8} {_one_line(hit.text)}{where}")


def _hit_json(hit: Any) -> dict[str, Any]:
    out = {"id": hit.id, "text": hit.text, "score": round(float(hit.score), 4), "kind": hit.kind,
           "source": hit.source, "locator": hit.locator, "user_id": hit.user_id, "session_id": hit.session_id,
           "created_at": hit.created_at}
    if getattr(hit, "similarity", None) is not None:
        out["similarity"] = round(float(hit.similarity), 4)
    return out


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


# -- kb ---------------------------------------------------------------------------------------

def _kb_add(args: argparse.Namespace) -> int:
    from memory.kb import ingest_paths

    with _open_store(args) as store:
        report = ingest_paths(store, args.paths, user_id=args.user, progress=False if args.no_progress else None)
    where = f"user {args.user}'s documents" if args.user else "the shared knowledge base"
    print(f"added {report.files} file(s), {report.chunks} passage(s) to {where}"
          + (f"; {report.unchanged} unchanged" if report.unchanged else ""))
    for path, why in report.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    return 1 if report.skipped and not report.files and not report.unchanged else 0


def _kb_list(args: argparse.Namespace) -> int:
    from memory.kb import list_all_documents

    with _open_store(args) as store:
        docs = list_all_documents(store, args.user)
    if args.json:
        print(json.dumps([{**vars(d), "scope": d.scope} for d in docs], ensure_ascii=False))
        return 0
    shown = "the shared knowledge base" + (f" and user {args.user}'s documents" if args.user else
                                          " and every user's documents")
    if not docs:
        print(f"no documents in {shown}; add files with `llmos kb add PATH [--user U]`")
        return 0
    print(f"documents in {shown}:")
    scope = None
    for d in docs:
        if d.scope != scope:
            scope = d.scope
            print(f"{scope}:" if d.user_id is None else f"{scope} (only this user's answers draw on these):")
        print(f"  {d.chunks:>6} passages  {d.bytes:>10} bytes  {_when(d.added_at)}  {d.source}")
    return 0


def _kb_remove(args: argparse.Namespace) -> int:
    from memory.kb import remove_documents

    with _open_store(args) as store:
        removed = remove_documents(store, args.paths, user_id=args.user)
    print(f"removed {removed} passage(s)")
    return 0


def _kb_search(args: argparse.Namespace) -> int:
    from memory.kb import search_documents

    with _open_store(args) as store:
        _print_hits(search_documents(store, args.text, k=args.k, user_id=args.user), args.json)
    return 0


# -- memory -----------------------------------------------------------------------------------

def _memory_search(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    with _open_store(args) as store:
        _print_hits(store.search(args.text, k=args.k, user_id=args.user, kinds=kinds), args.json)
    return 0


def _memory_list(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        records = store.list_memories(args.user, limit=args.limit)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], ensure_ascii=False))
        return 0
    if not records:
        print(f"nothing remembered about {args.user}")
    for r in records:
        print(f"{r.id:>7}  {_when(r.updated_at)}  {r.kind:<8} {_one_line(r.text)}")
    return 0


def _memory_forget(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        removed = store.forget(args.user)
    print(f"forgot {removed} memories of {args.user}")
    return 0


def _memory_delete(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        removed = store.delete(args.ids, user_id=args.user)
    if removed < len(set(args.ids)):
        print(f"deleted {removed}; the other ids are not {args.user}'s memories", file=sys.stderr)
    else:
        print(f"deleted {removed}")
    return 0


# -- eval -------------------------------------------------------------------------------------

def _eval_memory(args: argparse.Namespace) -> int:
    from memory.factory import build_embedder
    from memory.locomo import evaluate_locomo, run_ablation

    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    config = config_from_args(args)
    embedder = build_embedder(config.memory)
    say = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    if args.ablation:
        if args.answer:
            raise InputError("--answer and --ablation together would answer every question four times; pick one")
        results = run_ablation(args.locomo, embedder=embedder, config=config.memory, limit=args.limit, progress=say)
        print(json.dumps(results, indent=1) if args.json else _ablation_table(results))
        return 0
    answer = None
    if args.answer:
        from agent.models.loader import load_configured
        from memory.answer_f1 import model_answerer

        model = load_configured(config.model)
        answer = model_answerer(model)
    keep = _statements_policy(config, embedder) if args.write_policy == "statements" else None
    result = evaluate_locomo(args.locomo, embedder=embedder, config=config.memory, limit=args.limit,
                             answer=answer, progress=say, keep=keep)
    result["write_policy"] = args.write_policy
    print(json.dumps(result, indent=1) if args.json else _table(result))
    return 0


def _statements_policy(config: Any, embedder: Any) -> Any:
    """The agent's own write policy (``memory.remember: statements``): the turn's intent from
    the configured understanding, then :func:`~agent.understand.routing.worth_remembering`."""
    from agent.understand import build_understanding
    from agent.understand.routing import worth_remembering

    understanding = build_understanding(config.understanding, embedder)

    def keep(text: str) -> bool:
        understood = understanding.analyze(text, embedder.encode([text])[0], [])
        return worth_remembering(text, understood.intent)

    return keep


def _table(result: dict[str, Any]) -> str:
    has_f1 = "f1" in result
    lines = [f"{'category':<14}{'n':>6}{'recall@5':>10}{'recall@10':>11}" + (f"{'F1':>8}" if has_f1 else "")]
    rows = [(f"{c} {v['name']}", v) for c, v in result["per_category"].items()] + [("overall", result)]
    for name, v in rows:
        lines.append(f"{name:<14}{v['n']:>6}{v['recall@5']:>10.3f}{v['recall@10']:>11.3f}"
                     + (f"{v['f1']:>8.3f}" if has_f1 else ""))
    if result.get("memories"):
        lines.append(f"memories stored ({result.get('write_policy', 'all')}): {sum(result['memories'].values())} "
                     f"({', '.join(f'{k} {v}' for k, v in result['memories'].items())})")
    return "\n".join(lines)


def _ablation_table(results: dict[str, dict[str, Any]]) -> str:
    cats = list(next(iter(results.values()))["per_category"])
    head = f"{'variant':<10}{'R@5':>7}{'R@10':>7}" + "".join(f"{'c' + c + ' R@5/R@10':>16}" for c in cats)
    lines = [head]
    for name, r in results.items():
        cells = "".join(f"{r['per_category'][c]['recall@5']:>9.3f}/{r['per_category'][c]['recall@10']:<6.3f}"
                        for c in cats)
        lines.append(f"{name:<10}{r['recall@5']:>7.3f}{r['recall@10']:>7.3f}{cells}")
    return "\n".join(lines)
