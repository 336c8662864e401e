"""Model toolbox commands: ``train lm``, ``eval lm``, ``export`` and ``data clean|chitchat``.

The handlers parse, call :mod:`agent.toolbox` and print; everything heavy is imported
inside them so ``llmos --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.common import add_config_arg

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add this module's commands to the parser groups."""
    _register_train(groups.train)
    _register_eval(groups.eval)
    _register_export(groups.top)
    _register_data(groups.top)


# ---- train lm ------------------------------------------------------------------------------
def _register_train(train: Any) -> None:
    p = train.add_parser("lm", help="fine-tune the chat model on conversations (LoRA by default)",
                         description="Supervised fine-tuning with the loss on assistant tokens only. Runs the "
                                     "same under `accelerate launch` or `torchrun` on several GPUs.")
    p.add_argument("--data", required=True, metavar="FILE", help="JSONL conversations ({\"messages\": [...]} lines); "
                   "with --distill-from: the prompts (JSONL or .txt, one per line)")
    p.add_argument("--model", default="smollm2-135m", help="base model: preset, directory, .gguf or HF id")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="where the model, adapter and report go")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora", dest="lora", action="store_true", default=True, help="LoRA adapters (default)")
    mode.add_argument("--full", dest="lora", action="store_false", help="fine-tune every weight instead")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-4 LoRA, 2e-5 full)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
    p.add_argument("--batch-size", type=int, default=4, help="conversations per device per step (default 4)")
    p.add_argument("--grad-accum", type=int, default=2, help="gradient accumulation steps (default 2)")
    p.add_argument("--max-length", type=int, default=512, help="cut conversations to N tokens (default 512)")
    p.add_argument("--eval-data", metavar="FILE", help="held-out conversations (default: a split of --data)")
    p.add_argument("--eval-fraction", type=float, default=0.1, help="held-out share of --data (default 0.1)")
    p.add_argument("--max-eval", type=int, default=200, help="at most N held-out conversations (default 200)")
    p.add_argument("--eval-steps", type=int, default=None, help="also log the held-out loss every N steps")
    p.add_argument("--save-steps", type=int, default=50, help="checkpoint every N steps (default 50)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over even if checkpoints exist")
    p.add_argument("--limit", type=int, default=None, help="use only the first N conversations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-targets", default="all-linear", help="module names, comma-separated (default all-linear)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for GPU memory")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (try 1 on a busy shared machine)")
    p.add_argument("--adapter-only", action="store_true", help="save only the LoRA adapter (DIR/adapter)")
    p.add_argument("--distill-from", metavar="TEACHER", help="answer --data's prompts with TEACHER, then train on that")
    p.add_argument("--teacher-max-tokens", type=int, default=128, help="longest teacher reply (default 128)")
    p.add_argument("--teacher-batch-size", type=int, default=8)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train_lm)


def _train_lm(args: argparse.Namespace) -> int:
    from agent.toolbox.sft import TrainConfig, train_lm

    data, extra = args.data, {}
    out = Path(args.output)
    if args.distill_from:
        from agent.toolbox.distill import generate_teacher_data

        teacher = generate_teacher_data(args.distill_from, args.data, out / "teacher.jsonl",
                                        batch_size=args.teacher_batch_size, max_new_tokens=args.teacher_max_tokens,
                                        device=args.device, progress=not args.quiet)
        data, extra = teacher["data"], {"distillation": teacher}
        _note(f"teacher replies: {teacher['generated']} new, {teacher['reused']} reused -> {data}", args)
    cfg = TrainConfig(
        data=data, model=args.model, output_dir=out, lora=args.lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets, epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_length=args.max_length,
        eval_data=args.eval_data, eval_fraction=args.eval_fraction, max_eval=args.max_eval,
        eval_steps=args.eval_steps, save_steps=args.save_steps, resume=args.resume, limit=args.limit,
        seed=args.seed, device=args.device, precision=args.precision,
        gradient_checkpointing=args.gradient_checkpointing, threads=args.threads, merge=not args.adapter_only,
        progress=not args.quiet, extra=extra)
    report = train_lm(cfg)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    from agent.toolbox.metrics import format_table

    keys = ("steps", "wall_s", "steps_per_s", "tokens_per_s", "train_loss", "perplexity_before",
            "perplexity_after", "model_dir", "adapter_dir", "loss_curve")
    print(format_table([(k, report[k]) for k in keys if report.get(k) is not None],
                       title=f"train lm: {report['model']} ({'LoRA' if report['lora'] else 'full'}, "
                             f"{report['device']} {report['precision']})"))
    if report.get("model_dir"):
        print(f"\nchat with it: llmos ask --model {report['model_dir']} \"hello\"")
    return 0


# ---- eval lm -------------------------------------------------------------------------------
def _register_eval(ev: Any) -> None:
    p = ev.add_parser("lm", help="perplexity on assistant tokens; BLEU, chrF and ROUGE-L of generated replies",
                      description="Each conversation's last assistant message is the reference the model's "
                                  "reply is scored against.")
    p.add_argument("--data", required=True, metavar="FILE", help="JSONL conversations")
    p.add_argument("--model", default="smollm2-135m", help="preset, directory (e.g. a train lm output), .gguf or HF id")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the JSON results here")
    p.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    p.add_argument("--max-length", type=int, default=1024, help="cut conversations to N tokens for perplexity")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64, help="longest generated reply (default 64)")
    p.add_argument("--no-generate", dest="generate", action="store_false", help="perplexity only")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--quantization", choices=["int8", "8bit", "4bit"], default=None)
    p.set_defaults(func=_eval_lm)

    p = ev.add_parser("chat", help="the whole turn against the bare model on IFEval prompts",
                      description="Answer IFEval prompts with the bare model (raw), the default agent (agent) or "
                                  "the agent with one user across all prompts (agent-shared-memory), score them "
                                  "offline with the official checkers, and report routing, memory, echo and "
                                  "length figures beside the scores.")
    p.add_argument("--ifeval", required=True, metavar="FILE", help="IFEval input_data.jsonl")
    _add_turn_args(p)
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of N prompts")
    p.add_argument("--seed", type=int, default=0, help="which sample --limit takes")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("-o", "--output", metavar="FILE", help="also write each reply as JSONL here")
    p.set_defaults(func=_eval_chat)

    p = ev.add_parser("routing", help="does each turn reach the skill (or chat) that should answer it",
                      description="Route real public prompts (IFEval -> chat, MBPP -> code, DialogSum -> "
                                  "summarize, SQuAD with its article in the knowledge base -> qa) as the default "
                                  "agent would, and report accuracy per source.")
    p.add_argument("--data-dir", required=True, metavar="DIR", help="the shared data folder (../shared/data)")
    p.add_argument("--part", default="heldout", choices=["tune", "heldout"])
    p.add_argument("--per-source", type=int, default=None, help="a seeded sample of N per source")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--write-intents", metavar="FILE", help="instead: write the tune part's public intent examples")
    p.set_defaults(func=_eval_routing)

    p = ev.add_parser("injection", help="prompt-injection success rates, direct and planted in memory/documents",
                      description="Run the deepset injection test set and the Giskard prompts against the default "
                                  "agent: as the user's message (does the system prompt's secret leak, does the "
                                  "reply follow the attack), and planted in a memory or a knowledge-base document "
                                  "that the user only asks about (chat, /qa, /summarize).")
    p.add_argument("--data", required=True, metavar="DIR", help="the prompt_injections folder (../shared/data/...)")
    p.add_argument("--model", default=None, help="preset, directory, .gguf or HF id (default: the config's)")
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of N attacks (of 95)")
    p.add_argument("--seed", type=int, default=0, help="which sample --limit takes, and the sampling seed")
    p.add_argument("--routes", default="chat,qa,summarize", help="indirect routes (default: chat,qa,summarize)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="reply length cap (default 96)")
    p.add_argument("--no-raw", dest="raw", action="store_false", help="skip the bare-model direct run")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_eval_injection)

    p = ev.add_parser("facts", help="factual sanity questions (capitals, arithmetic, dates) with exact answers",
                      description="Ask each question of a {q, a: [...]} JSONL file (default: the 62 shipped ones) "
                                  "and count replies that contain an accepted answer.")
    p.add_argument("--data", metavar="FILE", default=None, help="JSONL of {q, a} (default: the shipped set)")
    _add_turn_args(p)
    p.add_argument("--repeats", type=int, default=1, help="ask every question N times (fresh sessions)")
    p.add_argument("--temperature", type=float, default=None, help="override the sampling (for choosing defaults)")
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_eval_facts)

    p = ev.add_parser("recall-gate", help="calibrate the similarity a memory needs to reach the prompt",
                      description="LoCoMo evidence vs non-evidence turns and IFEval prompts as off-topic queries; "
                                  "tuned on 3 conversations and half the prompts, reported on the rest.")
    p.add_argument("--locomo", required=True, metavar="FILE", help="locomo5_dev.json")
    p.add_argument("--ifeval", required=True, metavar="FILE", help="IFEval input_data.jsonl")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_eval_recall_gate)

    _register_eval_tools(ev)


def _eval_lm(args: argparse.Namespace) -> int:
    from agent.toolbox.eval_lm import evaluate_lm, format_eval

    result = evaluate_lm(args.data, args.model, limit=args.limit, max_length=args.max_length,
                         batch_size=args.batch_size, generate=args.generate, max_new_tokens=args.max_new_tokens,
                         device=args.device, dtype=args.dtype, quantization=args.quantization)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, ensure_ascii=False) if args.json else format_eval(result))
    return 0


# ---- eval tools ----------------------------------------------------------------------------
def _register_eval_tools(ev: Any) -> None:
    p = ev.add_parser("tools", help="tool calling on BFCL (simple, multiple, parallel, irrelevance) by AST match",
                      description="Offer each BFCL item's functions as tools (tool_choice auto, greedy), score the "
                                  "calls by BFCL's AST rules and report per category ast_accuracy, valid_rate "
                                  "(replies whose calls parse and satisfy the schema), call_rate and seconds. "
                                  "Constrained decoding is on unless --unconstrained.")
    p.add_argument("--bfcl", required=True, metavar="DIR", help="the BFCL folder (../shared/data/bfcl)")
    p.add_argument("--model", default="smollm2-135m", help="preset, directory, .gguf or HF id (default smollm2-135m)")
    p.add_argument("--categories", default="simple,multiple,parallel,irrelevance",
                   help="comma-separated (default: all four)")
    p.add_argument("--limit", type=int, default=None, help="only N items of each category")
    p.add_argument("--offset", type=int, default=0,
                   help="skip the first N items of each category (20: past the prompt-tuning slice)")
    p.add_argument("--unconstrained", action="store_true", help="the same run without the grammar mask")
    p.add_argument("--tool-choice", default="auto", help="auto (BFCL's setting), required, ... (default auto)")
    p.add_argument("--style", default=None, help="tool description wording for models whose template lacks tools")
    p.add_argument("--max-new-tokens", type=int, default=256, help="reply length cap (default 256)")
    p.add_argument("--mask-cost", action="store_true",
                   help="instead: time the constraint per token on 10 simple items from --offset (default 20), "
                        "constrained vs not")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the results with every item's reply here")
    p.set_defaults(func=_eval_tools)


def _eval_tools(args: argparse.Namespace) -> int:
    from agent.toolbox.bfcl import format_bfcl, mask_cost, run_bfcl

    if args.mask_cost:
        cost = mask_cost(args.bfcl, model=args.model, tool_choice=args.tool_choice, offset=args.offset or 20)
        print(json.dumps(cost, ensure_ascii=False) if args.json else
              "\n".join(f"{k}: {v}" for k, v in cost.items()))
        return 0
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]

    def progress(category: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{category}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    result = run_bfcl(args.bfcl, model=args.model, categories=categories, limit=args.limit, offset=args.offset,
                      constrained=not args.unconstrained, tool_choice=args.tool_choice,
                      max_new_tokens=args.max_new_tokens, style=args.style, details=bool(args.output),
                      progress=progress)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        for row in result["categories"].values():
            row.pop("items", None)
    print(json.dumps(result, ensure_ascii=False) if args.json else format_bfcl(result))
    return 0


def _add_turn_args(p: argparse.ArgumentParser) -> None:
    """--mode and --model, as `eval chat` and `eval facts` share them."""
    p.add_argument("--mode", default="agent", choices=["raw", "agent", "agent-shared-memory"])
    p.add_argument("--model", default=None, help="preset, directory, .gguf or HF id (default: the config's)")


def _eval_chat(args: argparse.Namespace) -> int:
    from agent.toolbox.chat_eval import format_chat_eval, run_chat_eval

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{total} prompts", end="" if done < total else "\n", file=sys.stderr, flush=True)

    result = run_chat_eval(args.ifeval, mode=args.mode, model=args.model, limit=args.limit, seed=args.seed,
                           output=args.output, progress=progress)
    print(json.dumps(result, ensure_ascii=False) if args.json else format_chat_eval(result))
    return 0


def _eval_facts(args: argparse.Namespace) -> int:
    from agent.toolbox.chat_eval import run_facts_eval

    overrides = {k: v for k, v in (("temperature", args.temperature), ("repetition_penalty", args.repetition_penalty),
                                   ("max_new_tokens", args.max_new_tokens)) if v is not None}
    result = run_facts_eval(mode=args.mode, model=args.model, data=args.data, generation=overrides or None,
                            repeats=args.repeats)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"facts: {result['model']}, mode {result['mode']}: {result['accuracy']:.3f} of {result['n']} "
              f"({result['generation']})")
        for row in result["wrong"][:10]:
            print(f"  wrong: {row['q']} -> {row['reply'][:80]!r}")
    return 0


def _eval_injection(args: argparse.Namespace) -> int:
    from agent.toolbox.injection_eval import format_injection_eval, run_injection_eval

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{total} turns", end="" if done < total else "\n", file=sys.stderr, flush=True)

    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    result = run_injection_eval(args.data, model=args.model, limit=args.limit, seed=args.seed, routes=routes,
                                max_new_tokens=args.max_new_tokens, raw=args.raw, progress=progress)
    print(json.dumps(result, ensure_ascii=False) if args.json else format_injection_eval(result))
    return 0


def _eval_recall_gate(args: argparse.Namespace) -> int:
    from agent.toolbox.recall_gate import calibrate_recall_gate, format_recall_gate

    result = calibrate_recall_gate(args.locomo, args.ifeval)
    print(json.dumps(result) if args.json else format_recall_gate(result))
    return 0


def _eval_routing(args: argparse.Namespace) -> int:
    from agent.toolbox.routing_eval import evaluate_routing, format_routing, routing_set, write_public_intents

    if args.write_intents:
        count = write_public_intents(args.data_dir, args.write_intents)
        print(f"wrote {count} examples to {args.write_intents}")
        return 0
    result = evaluate_routing(routing_set(args.data_dir, args.part, per_source=args.per_source))
    print(json.dumps(result, ensure_ascii=False) if args.json else format_routing(result))
    return 0


# ---- export --------------------------------------------------------------------------------
def _register_export(top: Any) -> None:
    p = top.add_parser("export", help="export stored conversations as training data (JSONL)",
                       description="Every session of the agent's conversation store becomes one "
                                   "{\"messages\": [...]} line, ready for `llmos data clean` and `llmos train lm`.")
    p.add_argument("--format", default="jsonl", choices=["jsonl"], help="output format (OpenAI messages JSONL)")
    p.add_argument("-o", "--output", default="-", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--store", metavar="FILE", help="conversations.sqlite3 to read (default: the config's)")
    p.add_argument("--user", action="append", help="only this user (repeatable)")
    p.add_argument("--system", help="prepend this system message to every conversation")
    p.add_argument("--no-ids", dest="ids", action="store_false", help="leave out session and user ids")
    p.add_argument("--min-turns", type=int, default=1, help="skip sessions with fewer replies (default 1)")
    add_config_arg(p)
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from agent.toolbox.export import export_store, store_path_for

    store = Path(args.store) if args.store else store_path_for(args.config)
    convs = export_store(store, users=args.user, system=args.system, include_ids=args.ids, min_turns=args.min_turns)
    if args.output == "-":
        count = 0
        for conv in convs:
            sys.stdout.write(json.dumps(conv, ensure_ascii=False) + "\n")
            count += 1
    else:
        from agent.toolbox.conversations import write_conversations

        count = write_conversations(convs, args.output)
    print(f"exported {count} conversations from {store}", file=sys.stderr)
    return 0


# ---- data clean | chitchat -----------------------------------------------------------------
def _register_data(top: Any) -> None:
    data = top.add_parser("data", help="clean or convert conversation data for training")
    sub = data.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    clean = sub.add_parser("clean", help="normalise, filter, de-duplicate and optionally mask personal data")
    clean.add_argument("input", metavar="IN", help="JSONL conversations")
    clean.add_argument("-o", "--output", required=True, metavar="OUT")
    _cleaning_args(clean)
    clean.set_defaults(func=_data_clean)
    chat = sub.add_parser("chitchat", help="convert the chitchat-dataset corpus (4,018 two-person chats)")
    chat.add_argument("-o", "--output", required=True, metavar="OUT")
    chat.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    chat.add_argument("--system", help="a system message to put first in every conversation")
    chat.add_argument("--raw", action="store_true", help="skip cleaning (normalisation, filters, de-duplication)")
    _cleaning_args(chat)
    chat.set_defaults(func=_data_chitchat)


def _cleaning_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mask-pii", action="store_true", help="replace e-mails, phone and card numbers by placeholders")
    p.add_argument("--no-dedup", dest="dedup", action="store_false", help="keep exact duplicates")
    p.add_argument("--near-dup", type=float, default=0.85, metavar="J",
                   help="drop near duplicates at word-3-gram Jaccard >= J (default 0.85; 0 turns it off)")
    p.add_argument("--min-assistant-turns", type=int, default=1)
    p.add_argument("--min-chars", type=int, default=1, help="drop shorter conversations (all messages)")
    p.add_argument("--max-chars", type=int, default=20_000, help="drop longer conversations (all messages)")
    p.add_argument("--max-message-chars", type=int, default=8_000, help="drop conversations with a longer message")
    p.add_argument("--report", metavar="FILE", help="write the cleaning report as JSON (default: OUT.report.json)")


def _clean_and_write(convs: Any, args: argparse.Namespace) -> int:
    from agent.toolbox.clean import CleanOptions, clean_conversations
    from agent.toolbox.conversations import write_conversations

    options = CleanOptions(mask_pii=args.mask_pii, dedup=args.dedup, near_dup_threshold=args.near_dup or None,
                           min_assistant_turns=args.min_assistant_turns, min_chars=args.min_chars,
                           max_chars=args.max_chars, max_message_chars=args.max_message_chars)
    kept, report = clean_conversations(convs, options)
    write_conversations(kept, args.output)
    report_path = Path(args.report or f"{args.output}.report.json")
    report_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print(f"{report.summary()}\nwrote {args.output} (report: {report_path})")
    return 0


def _data_clean(args: argparse.Namespace) -> int:
    from agent.toolbox.conversations import iter_conversations

    return _clean_and_write(iter_conversations(args.input), args)


def _data_chitchat(args: argparse.Namespace) -> int:
    from agent.toolbox.chitchat import chitchat_conversations

    convs = chitchat_conversations(limit=args.limit, system=args.system)
    if args.raw:
        from agent.toolbox.conversations import write_conversations

        count = write_conversations(convs, args.output)
        print(f"wrote {count} conversations to {args.output}")
        return 0
    return _clean_and_write(convs, args)


def _note(message: str, args: argparse.Namespace) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)
