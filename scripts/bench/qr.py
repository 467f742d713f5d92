#!/usr/bin/env python3
"""QR recall and time on the shared ZXing photo sets: RxEdge's pipeline
(`rxedge-kiosk scan`), zxing-cpp and zbar, on the same images in one run.

Time is decode time per image, images already loaded as grayscale for every
decoder (our figure is measured inside rxedge-kiosk, after PNG decoding).
Each decoder reads every image QR_BENCH_REPEAT times (default 5) and keeps
its fastest time for that image, which takes most of a shared machine's noise
out of all three figures alike; the means are over those per-image times.
A hit is a code whose text equals the expected N.txt byte for byte.
"""
import glob, json, os, subprocess, sys, time

root = os.environ.get("RXEDGE_FIXTURES") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures")
kiosk = sys.argv[1]
images = sorted(glob.glob(os.path.join(root, "qr", "zxing-qrcode-*", "*.png")))
if not images:
    sys.exit(f"no images under {root}/qr: the fixtures are needed for this benchmark")
expected = {}
for p in images:
    with open(p[:-4] + ".txt", "rb") as f:
        expected[p] = f.read().decode("utf-8", "replace")

def hit(p, texts):
    return any(t == expected[p] for t in texts)

repeat = max(1, int(os.environ.get("QR_BENCH_REPEAT", "5")))
best = {}
results = {}
for _ in range(repeat):
    out = subprocess.run([kiosk, "scan", *images], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        r = json.loads(line)
        f = r["file"]
        best[f] = min(best.get(f, float("inf")), r.get("ms", 0.0))
        results[f] = [c["text"] for c in r.get("codes", [])]
ours, misses = 0, []
for f in images:
    if hit(f, results.get(f, [])):
        ours += 1
    else:
        misses.append(os.path.relpath(f, os.path.join(root, "qr")))
ours_ms = [best[f] for f in images]

from PIL import Image
import zxingcpp
from pyzbar import pyzbar
zx, zx_ms, zb, zb_ms = 0, [], 0, []
def fastest(f):
    """f() `repeat` times: (its last result, its fastest time in ms)."""
    t_best, res = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        res = f()
        t_best = min(t_best, (time.perf_counter() - t) * 1000)
    return res, t_best

for p in images:
    img = Image.open(p).convert("L")
    res, ms = fastest(lambda: zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode))
    zx_ms.append(ms)
    zx += hit(p, [r.text for r in res])
    res, ms = fastest(lambda: pyzbar.decode(img, symbols=[pyzbar.ZBarSymbol.QRCODE]))
    zb_ms.append(ms)
    zb += hit(p, [r.data.decode("utf-8", "replace") for r in res])

n = len(images)
mean = lambda v: sum(v) / max(len(v), 1)
print(f"missed by rxedge ({len(misses)}): {' '.join(misses)}", file=sys.stderr)
print(f"qr: rxedge={ours}/{n} rxedge_ms={mean(ours_ms):.1f} zxingcpp={zx}/{n} zxingcpp_ms={mean(zx_ms):.1f} zbar={zb}/{n} zbar_ms={mean(zb_ms):.1f}"
      f" ratio_to_zbar={mean(ours_ms) / max(mean(zb_ms), 1e-9):.2f}")
