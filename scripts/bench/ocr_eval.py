#!/usr/bin/python3
"""Score OCR runs against the generator's ground truth (scripts/bench/ocr).

Usage: ocr_eval.py SET_DIR OURS.jsonl BARE_DIR [--split holdout|tune|all]
       ocr_eval.py --real REAL.jsonl   (lists the items read from real pages)

  SET_DIR      the labelled set (NNNN.json ground truth, see gen_prescriptions.py)
  OURS.jsonl   `rxedge-hub ocr` output, one JSON line per image
  BARE_DIR     bare Tesseract's NNNN.txt and its per-page times in times.tsv

Metrics, on the chosen split (holdout by default: never tuned on):
  time per page   ours: the pipeline's own `ms` (decode, preprocess, OCR,
                  extraction; the model stays loaded as in the hub's workers);
                  bare: wall time of one `tesseract` CLI run per page, as a
                  shell user would run it (this includes loading the model).
  CER             Levenshtein distance / ground-truth length, on texts with
                  runs of whitespace collapsed to one space.
  field accuracy  each ground-truth item is paired with the predicted item of
                  the most similar name (each prediction used once). drug: the
                  pair names the same drug (same printed name after
                  normalisation, or the vocabulary match gives the same
                  generic); strength and dose: exact after normalisation. An
                  unpaired ground-truth item counts wrong on every field.
"""

import difflib
import json
import os
import re
import sys

import Levenshtein


def norm_text(s):
    return re.sub(r"\s+", " ", s or "").strip()


def cer(pred, truth):
    t = norm_text(truth)
    if not t:
        return 0.0
    return Levenshtein.distance(norm_text(pred), t) / len(t)


def norm_name(s):
    return re.sub(r"[^0-9a-z]", "", (s or "").lower())


def norm_strength(s):
    s = (s or "").lower().replace(" ", "").replace(",", ".")
    return s.replace("µg", "mcg").replace("μg", "mcg").replace("ug", "mcg").replace("i.e.", "ie").replace("iu", "ie")


def norm_dose(s):
    try:
        return tuple(float(x) for x in (s or "").split("-"))
    except ValueError:
        return None


def pair(truth_items, pred_items):
    """Greedy pairing by name similarity; returns [(gt, pred or None)]."""
    cand = []
    for i, g in enumerate(truth_items):
        for j, p in enumerate(pred_items):
            m = p.get("matched") or {}
            same_drug = m.get("generic") and m.get("generic") == g["generic"]
            sim = difflib.SequenceMatcher(None, norm_name(g["name"]), norm_name(p.get("name"))).ratio()
            score = max(sim, 0.9 if same_drug else 0.0)
            if score >= 0.5:
                cand.append((score, i, j))
    cand.sort(reverse=True)
    used_g, used_p, out = set(), set(), {}
    for _, i, j in cand:
        if i in used_g or j in used_p:
            continue
        used_g.add(i)
        used_p.add(j)
        out[i] = pred_items[j]
    return [(g, out.get(i)) for i, g in enumerate(truth_items)], len(pred_items) - len(used_p)


def real(path):
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        name = os.path.basename(d.get("file", "?"))
        if "error" in d:
            print(f"  {name}: {d['error']}")
            continue
        items = ", ".join(f"{i['name']} {i['strength']} [{i['dose']}]" for i in d.get("items", []))
        print(f"  {name}: {len(d.get('items', []))} items in {d.get('ms', 0):.0f} ms: {items}")


def main():
    if sys.argv[1:2] == ["--real"]:
        real(sys.argv[2])
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    split = "holdout"
    if "--split" in sys.argv:
        split = sys.argv[sys.argv.index("--split") + 1]
        args = [a for a in args if a != split]
    set_dir, ours_path, bare_dir = args[:3]
    ours = {}
    for line in open(ours_path, encoding="utf-8"):
        d = json.loads(line)
        ours[os.path.basename(d["file"]).split(".")[0]] = d
    times = {}
    for line in open(os.path.join(bare_dir, "times.tsv"), encoding="utf-8"):
        k, ms = line.split("\t")
        times[k] = float(ms)
    rows = []
    for f in sorted(os.listdir(set_dir)):
        if not re.fullmatch(r"\d{4}\.json", f):
            continue
        gt = json.load(open(os.path.join(set_dir, f), encoding="utf-8"))
        if split != "all" and gt["split"] != split:
            continue
        rows.append(gt)
    if not rows:
        sys.exit(f"no images in split {split}")
    n = 0
    ms_ours = ms_bare = cer_ours = cer_bare = 0.0
    fields = {"drug": [0, 0], "strength": [0, 0], "dose": [0, 0]}
    spurious = predicted = 0
    failed = 0
    by_layout = {}
    for gt in rows:
        k = gt["id"]
        o = ours.get(k)
        if o is None or "error" in o:
            failed += 1
            o = {"text": "", "items": [], "ms": 0.0}
        try:
            bare = open(os.path.join(bare_dir, k + ".txt"), encoding="utf-8").read()
        except FileNotFoundError:
            bare = ""
        n += 1
        ms_ours += o.get("ms", 0.0)
        ms_bare += times.get(k, 0.0)
        c_o, c_b = cer(o.get("text", ""), gt["text"]), cer(bare, gt["text"])
        cer_ours += c_o
        cer_bare += c_b
        pairs, extra = pair(gt["items"], o.get("items", []))
        spurious += extra
        predicted += len(o.get("items", []))
        lay = by_layout.setdefault(gt["layout"], {"n": 0, "items": 0, "drug": 0, "strength": 0, "dose": 0, "cer_o": 0.0, "cer_b": 0.0})
        lay["n"] += 1
        lay["cer_o"] += c_o
        lay["cer_b"] += c_b
        for g, p in pairs:
            lay["items"] += 1
            ok = {"drug": False, "strength": False, "dose": False}
            if p is not None:
                m = p.get("matched") or {}
                ok["drug"] = norm_name(p.get("name")) == norm_name(g["name"]) or m.get("generic") == g["generic"]
                ok["strength"] = norm_strength(p.get("strength")) == norm_strength(g["strength"])
                ok["dose"] = p.get("dose") is not None and norm_dose(p.get("dose")) == norm_dose(g["dose"])
            for f, v in ok.items():
                fields[f][0] += int(v)
                fields[f][1] += 1
                lay[f] += int(v)
    acc = {f: (a / t if t else 0.0) for f, (a, t) in fields.items()}
    print(f"split={split} pages={n} items={fields['drug'][1]} predicted={predicted} spurious={spurious} failed={failed}", file=sys.stderr)
    for name, l in sorted(by_layout.items()):
        i = max(l["items"], 1)
        print(
            f"  {name:14} pages={l['n']:3} items={l['items']:3} drug={l['drug'] / i:.3f} strength={l['strength'] / i:.3f} "
            f"dose={l['dose'] / i:.3f} cer_ours={l['cer_o'] / l['n']:.3f} cer_bare={l['cer_b'] / l['n']:.3f}",
            file=sys.stderr,
        )
    print(
        f"ocr: pages={n} rxedge_ms={ms_ours / n:.0f} tesseract_ms={ms_bare / n:.0f} "
        f"rxedge_cer={cer_ours / n:.3f} tesseract_cer={cer_bare / n:.3f} "
        f"drug_acc={acc['drug']:.3f} strength_acc={acc['strength']:.3f} dose_acc={acc['dose']:.3f}"
    )


if __name__ == "__main__":
    main()
