#!/usr/bin/env python3
"""QR recall and time on the shared ZXing photo sets: RxEdge's pipeline
(`rxedge-kiosk scan`), zxing-cpp and zbar, on the same images in one run.

Time is decode time per image, images already loaded as grayscale for every
decoder (our figure is measured inside rxedge-kiosk, after PNG decoding).
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

out = subprocess.run([kiosk, "scan", *images], capture_output=True, text=True, check=True).stdout
ours, ours_ms, misses = 0, [], []
for line in out.splitlines():
    r = json.loads(line)
    ours_ms.append(r.get("ms", 0.0))
    if hit(r["file"], [c["text"] for c in r.get("codes", [])]):
        ours += 1
    else:
        misses.append(os.path.relpath(r["file"], os.path.join(root, "qr")))

from PIL import Image
import zxingcpp
from pyzbar import pyzbar
zx, zx_ms, zb, zb_ms = 0, [], 0, []
for p in images:
    img = Image.open(p).convert("L")
    t = time.perf_counter()
    res = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    zx_ms.append((time.perf_counter() - t) * 1000)
    zx += hit(p, [r.text for r in res])
    t = time.perf_counter()
    res = pyzbar.decode(img, symbols=[pyzbar.ZBarSymbol.QRCODE])
    zb_ms.append((time.perf_counter() - t) * 1000)
    zb += hit(p, [r.data.decode("utf-8", "replace") for r in res])

n = len(images)
mean = lambda v: sum(v) / max(len(v), 1)
print(f"missed by rxedge ({len(misses)}): {' '.join(misses)}", file=sys.stderr)
print(f"qr: rxedge={ours}/{n} rxedge_ms={mean(ours_ms):.1f} zxingcpp={zx}/{n} zxingcpp_ms={mean(zx_ms):.1f} zbar={zb}/{n} zbar_ms={mean(zb_ms):.1f}")
