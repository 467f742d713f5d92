//! Page images in, an image the engine reads well out: decoding with size
//! limits, EXIF orientation, greyscale, deskew and text-size normalisation.
//! Each step is kept because it measurably helps (see `docs/ocr.md`).

use image::{DynamicImage, GrayImage, Luma};

pub use rxedge_shared::image_decode::{decode, ImageError, Limits};

/// Which steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Steps {
    /// Cut a photographed page out of the desk around it. Off by default:
    /// a shadow across the page can split the paper region, and on the tune
    /// split it did not pay (docs/ocr.md).
    pub crop_page: bool,
    /// Straighten a page photographed at an angle (±10°).
    pub deskew: bool,
    /// Even out a shadow or uneven light across the page (flat-fielding:
    /// each pixel divided by the paper's local brightness), when the
    /// paper's brightness varies.
    pub flatten: bool,
    /// Scale so that a text line is about this many pixels high (0: off).
    pub line_height: u32,
}

impl Default for Steps {
    fn default() -> Self {
        Steps {
            crop_page: false,
            deskew: true,
            flatten: true,
            line_height: 40,
        }
    }
}

/// A page ready for the engine, and how to map its boxes back.
pub struct Prepared {
    /// The greyscale page.
    pub image: GrayImage,
    /// Multiply a box on `image` by this, then add `offset`, to get the
    /// original's pixels (after orientation; deskew is small and ignored
    /// for boxes).
    pub scale_back: f64,
    /// Where the cropped page starts in the original.
    pub offset: (u32, u32),
    /// The skew found, in degrees.
    pub skew_degrees: f64,
    /// The resolution to tell the engine.
    pub ppi: u32,
}

/// Greyscale, deskew and scale.
pub fn prepare(img: &DynamicImage, steps: Steps) -> Prepared {
    let mut g = img.to_luma8();
    let mut offset = (0, 0);
    if steps.crop_page {
        if let Some((x, y, w, h)) = page_region(&g) {
            g = image::imageops::crop_imm(&g, x, y, w, h).to_image();
            offset = (x, y);
        }
    }
    let mut skew = 0.0;
    if steps.deskew {
        skew = estimate_skew(&g);
        if skew.abs() >= 0.4 {
            g = rotate(&g, -skew);
        }
    }
    if steps.flatten {
        flatten(&mut g);
    }
    let mut scale = 1.0;
    if steps.line_height > 0 {
        if let Some(lh) = line_height(&g) {
            let f = (f64::from(steps.line_height) / lh).clamp(0.5, 3.0);
            // Text down to 45 % of the target reads as well unscaled, and
            // scaling costs time (a third of the page's time on the tune
            // split); smaller text (a 100 dpi print-out) needs it.
            if !(0.5..=2.2).contains(&f) {
                scale = f;
                let (w, h) = g.dimensions();
                let (nw, nh) = (
                    ((f64::from(w) * f).round() as u32).max(1),
                    ((f64::from(h) * f).round() as u32).max(1),
                );
                // Enlarging small print needs a sharp filter: bilinear lost
                // the eMediplan print-outs' doses and a strength.
                let filter = if f > 1.0 {
                    image::imageops::FilterType::CatmullRom
                } else {
                    image::imageops::FilterType::Triangle
                };
                g = image::imageops::resize(&g, nw, nh, filter);
            }
        }
    }
    Prepared {
        image: g,
        scale_back: 1.0 / scale,
        offset,
        skew_degrees: skew,
        ppi: 300,
    }
}

/// A table cell cut out for a closer look.
pub struct Cell {
    /// The cell, ruling lines removed, on a white margin.
    pub image: GrayImage,
    /// The margin added on each side.
    pub pad: u32,
}

/// Cuts `b` out of the page, binarises it, whitens ruling lines (rows or
/// columns that are mostly ink) and adds a white margin, which the engine
/// needs around a lone character. `None` for an empty cell.
pub fn cell(g: &GrayImage, b: super::layout::BBox) -> Option<Cell> {
    let (w, h) = g.dimensions();
    let x = b.x.min(w.saturating_sub(1));
    let y = b.y.min(h.saturating_sub(1));
    let cw = b.w.min(w - x).max(1);
    let ch = b.h.min(h - y).max(1);
    let mut c = image::imageops::crop_imm(g, x, y, cw, ch).to_image();
    // A photo's grey paper and a printer's grey rules: binarise the cell
    // against its own histogram first. A cell without contrast is empty,
    // and not worth an engine call.
    let (lo, hi) = c
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
    if hi.saturating_sub(lo) < 60 {
        return None;
    }
    let t = otsu(&c);
    for p in c.pixels_mut() {
        p.0[0] = if p.0[0] <= t { 0 } else { 255 };
    }
    for yy in 0..ch {
        let ink = (0..cw).filter(|xx| c.get_pixel(*xx, yy).0[0] == 0).count();
        if ink * 10 > cw as usize * 6 {
            for xx in 0..cw {
                c.put_pixel(xx, yy, Luma([255]));
            }
        }
    }
    for xx in 0..cw {
        let ink = (0..ch).filter(|yy| c.get_pixel(xx, *yy).0[0] == 0).count();
        if ink * 10 > ch as usize * 6 {
            for yy in 0..ch {
                c.put_pixel(xx, yy, Luma([255]));
            }
        }
    }
    // Nothing left once the rules are gone: an empty cell.
    if c.pixels().all(|p| p.0[0] == 255) {
        return None;
    }
    let pad = 12;
    let mut out = GrayImage::from_pixel(cw + 2 * pad, ch + 2 * pad, Luma([255]));
    image::imageops::replace(&mut out, &c, i64::from(pad), i64::from(pad));
    Some(Cell { image: out, pad })
}

/// The page in a photo: the largest bright region, when it leaves out a
/// real part of the picture (a desk around it). `None` when the page fills
/// the picture (a scan) or nothing stands out.
pub fn page_region(g: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let (s, f) = small(g, 400);
    let (w, h) = s.dimensions();
    let t = otsu(&s);
    let bright: Vec<bool> = s.pixels().map(|p| p.0[0] > t).collect();
    let mut seen = vec![false; bright.len()];
    let mut best: Option<(usize, (u32, u32, u32, u32))> = None;
    let mut stack = Vec::new();
    for start in 0..bright.len() {
        if !bright[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut n, mut x0, mut y0, mut x1, mut y1) = (0usize, w, h, 0u32, 0u32);
        while let Some(i) = stack.pop() {
            n += 1;
            let (x, y) = ((i as u32) % w, (i as u32) / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            let mut visit = |j: usize| {
                if bright[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w as usize);
            }
            if y + 1 < h {
                visit(i + w as usize);
            }
        }
        if best.is_none_or(|(m, _)| n > m) {
            best = Some((n, (x0, y0, x1, y1)));
        }
    }
    let (n, (x0, y0, x1, y1)) = best?;
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let area = f64::from(w) * f64::from(h);
    let boxed = f64::from(bw) * f64::from(bh);
    // Most of the box must be paper, the box a fair part of the picture,
    // and the crop worth making.
    if (n as f64) < boxed * 0.5 || boxed < area * 0.2 || boxed > area * 0.9 {
        return None;
    }
    let m = 2; // small pixels of margin
    let back = |v: u32| (f64::from(v) / f).round() as u32;
    let (gw, gh) = g.dimensions();
    let x = back(x0.saturating_sub(m)).min(gw - 1);
    let y = back(y0.saturating_sub(m)).min(gh - 1);
    let r = back((x1 + m + 1).min(w)).min(gw);
    let b = back((y1 + m + 1).min(h)).min(gh);
    Some((x, y, r.saturating_sub(x).max(1), b.saturating_sub(y).max(1)))
}

/// Divides out uneven lighting. The paper's brightness is estimated per
/// 24-pixel block (its brightest pixel, spread to neighbouring blocks so a
/// block inside a bold heading still sees paper), and each pixel is scaled
/// by 255 / that brightness, interpolated between block centres. Greyscale
/// stays greyscale: Tesseract's LSTM reads grey better than a hard black and
/// white. Returns whether the page needed it (the darkest paper under 85 %
/// of the brightest).
pub fn flatten(g: &mut GrayImage) -> bool {
    const B: u32 = 24;
    let (w, h) = g.dimensions();
    if w < B * 2 || h < B * 2 {
        return false;
    }
    let (bw, bh) = (w.div_ceil(B) as usize, h.div_ceil(B) as usize);
    let mut bg = vec![0u8; bw * bh];
    for y in 0..h {
        let row = (y / B) as usize * bw;
        for x in 0..w {
            let v = g.get_pixel(x, y).0[0];
            let c = &mut bg[row + (x / B) as usize];
            if v > *c {
                *c = v;
            }
        }
    }
    // Dilate twice on the block grid: paper seen from inside large print.
    for _ in 0..2 {
        let prev = bg.clone();
        for by in 0..bh {
            for bx in 0..bw {
                let mut m = 0u8;
                for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1), (0, 0)] {
                    let (nx, ny) = (bx as i64 + dx, by as i64 + dy);
                    if nx >= 0 && ny >= 0 && (nx as usize) < bw && (ny as usize) < bh {
                        m = m.max(prev[ny as usize * bw + nx as usize]);
                    }
                }
                bg[by * bw + bx] = m;
            }
        }
    }
    let mut sorted = bg.clone();
    sorted.sort_unstable();
    let lo = f64::from(sorted[sorted.len() / 20]);
    let hi = f64::from(sorted[sorted.len() * 19 / 20]);
    if hi <= 0.0 || lo / hi >= 0.85 {
        return false;
    }
    let field: Vec<f32> = bg.iter().map(|v| f32::from((*v).max(40))).collect();
    // The paper's brightness along each block row, at every x, then
    // between two block rows at every y: one multiply per pixel.
    let wu = w as usize;
    let xs: Vec<(usize, f32)> = (0..w)
        .map(|x| {
            let fx = (x as f32 / B as f32 - 0.5).max(0.0);
            ((fx as usize).min(bw - 1), fx.fract())
        })
        .collect();
    let rows: Vec<Vec<f32>> = (0..bh)
        .map(|by| {
            xs.iter()
                .map(|&(x0, t)| {
                    let a = field[by * bw + x0];
                    let b = field[by * bw + (x0 + 1).min(bw - 1)];
                    a + (b - a) * t
                })
                .collect()
        })
        .collect();
    let buf: &mut [u8] = g;
    for y in 0..h as usize {
        let fy = (y as f32 / B as f32 - 0.5).max(0.0);
        let (y0, t) = ((fy as usize).min(bh - 1), fy.fract());
        let (r0, r1) = (&rows[y0], &rows[(y0 + 1).min(bh - 1)]);
        for (x, p) in buf[y * wu..(y + 1) * wu].iter_mut().enumerate() {
            let b = r0[x] + (r1[x] - r0[x]) * t;
            *p = (f32::from(*p) * 255.0 / b + 0.5).min(255.0) as u8;
        }
    }
    true
}

/// A small copy (longest side ≤ `max`) and Otsu's threshold for it.
fn small(g: &GrayImage, max: u32) -> (GrayImage, f64) {
    let (w, h) = g.dimensions();
    let f = (f64::from(max) / f64::from(w.max(h))).min(1.0);
    // Area averaging (`thumbnail`) is several times faster than a filtered
    // resize, and these copies are only measured, never read.
    let s = if f < 1.0 {
        image::imageops::thumbnail(
            g,
            ((f64::from(w) * f) as u32).max(1),
            ((f64::from(h) * f) as u32).max(1),
        )
    } else {
        g.clone()
    };
    (s, f)
}

/// Otsu's threshold: the kiosk's paper gate computes it the same way.
fn otsu(g: &GrayImage) -> u8 {
    rxedge_kiosk::paper::otsu(g)
}

/// Ink pixels of a small copy, found against the local mean so a shadow
/// across the page, or the desk around it, does not count as ink: a pixel
/// is ink when it is clearly darker than its 15×15 neighbourhood.
fn ink(s: &GrayImage) -> Vec<(f64, f64)> {
    let (w, h) = s.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    // Integral image, one row and column of zeros in front.
    let mut sum = vec![0u64; (wu + 1) * (hu + 1)];
    for y in 0..hu {
        let mut row = 0u64;
        for x in 0..wu {
            row += u64::from(s.get_pixel(x as u32, y as u32).0[0]);
            sum[(y + 1) * (wu + 1) + x + 1] = sum[y * (wu + 1) + x + 1] + row;
        }
    }
    let r = 7usize;
    let mut out = Vec::new();
    for y in 0..hu {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(hu));
        for x in 0..wu {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(wu));
            let total = sum[y1 * (wu + 1) + x1] + sum[y0 * (wu + 1) + x0]
                - sum[y0 * (wu + 1) + x1]
                - sum[y1 * (wu + 1) + x0];
            let n = ((y1 - y0) * (x1 - x0)) as u64;
            let mean = total / n.max(1);
            let v = u64::from(s.get_pixel(x as u32, y as u32).0[0]);
            if v + 40 < mean {
                out.push((x as f64, y as f64));
            }
        }
    }
    out
}

/// The page's skew in degrees (positive: text rises to the right), by the
/// angle at which the ink's row profile is sharpest.
pub fn estimate_skew(g: &GrayImage) -> f64 {
    let (s, _) = small(g, 900);
    let pts = ink(&s);
    if pts.len() < 200 {
        return 0.0;
    }
    let h = f64::from(s.height());
    let w = f64::from(s.width());
    let score = |deg: f64| -> f64 {
        let (sin, cos) = deg.to_radians().sin_cos();
        let n = (h + w) as usize + 2;
        let mut bins = vec![0u32; n];
        for (x, y) in &pts {
            let r = y * cos + x * sin + w;
            if let Some(b) = bins.get_mut(r as usize) {
                *b += 1;
            }
        }
        bins.iter().map(|b| f64::from(*b).powi(2)).sum()
    };
    let mut best = (score(0.0), 0.0);
    let mut deg = -10.0;
    while deg <= 10.0 {
        let sc = score(deg);
        if sc > best.0 {
            best = (sc, deg);
        }
        deg += 0.5;
    }
    let centre = best.1;
    let mut d = centre - 0.5;
    while d <= centre + 0.5 {
        let sc = score(d);
        if sc > best.0 {
            best = (sc, d);
        }
        d += 0.1;
    }
    // The profile of rows y·cos + x·sin is sharpest when that line runs
    // along the text, i.e. for text tilted by -deg.
    -best.1
}

/// Rotates by `deg` about the centre (bilinear), filling with white.
pub fn rotate(g: &GrayImage, deg: f64) -> GrayImage {
    let (w, h) = g.dimensions();
    let (sin, cos) = deg.to_radians().sin_cos();
    let (sin, cos) = (sin as f32, cos as f32);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let src = g.as_raw();
    let wu = w as usize;
    let mut out = vec![255u8; src.len()];
    let (xmax, ymax) = ((w - 1) as f32, (h - 1) as f32);
    for y in 0..h {
        let dy = y as f32 - cy;
        // Inverse map: where each output pixel comes from; it moves by
        // (cos, -sin) per step along the row.
        let mut sx = -cos * cx + sin * dy + cx;
        let mut sy = sin * cx + cos * dy + cy;
        let row = &mut out[y as usize * wu..(y as usize + 1) * wu];
        for o in row.iter_mut() {
            if sx >= 0.0 && sy >= 0.0 && sx < xmax && sy < ymax {
                let (x0, y0) = (sx as usize, sy as usize);
                let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
                let i = y0 * wu + x0;
                let (a, b, c, d) = (
                    f32::from(src[i]),
                    f32::from(src[i + 1]),
                    f32::from(src[i + wu]),
                    f32::from(src[i + wu + 1]),
                );
                let top = a + (b - a) * fx;
                let bottom = c + (d - c) * fx;
                *o = (top + (bottom - top) * fy + 0.5) as u8;
            }
            sx += cos;
            sy -= sin;
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| g.clone())
}

/// The median height of text lines in pixels, from the row profile of the
/// ink: runs of rows with ink, separated by blank rows.
pub fn line_height(g: &GrayImage) -> Option<f64> {
    let (s, f) = small(g, 1600);
    let (w, h) = s.dimensions();
    let t = otsu(&s);
    let mut rows = Vec::with_capacity(h as usize);
    for y in 0..h {
        let n = (0..w).filter(|x| s.get_pixel(*x, y).0[0] <= t).count();
        rows.push(n);
    }
    // A row is text when it holds more ink than a ruled line's thickness
    // would spread over a tenth of the width.
    let min_ink = (w as usize / 200).max(2);
    let mut runs = Vec::new();
    let mut start = None;
    for (y, n) in rows.iter().enumerate() {
        match (start, *n >= min_ink) {
            (None, true) => start = Some(y),
            (Some(s0), false) => {
                runs.push(y - s0);
                start = None;
            }
            _ => {}
        }
    }
    runs.retain(|r| *r >= 3);
    if runs.len() < 3 {
        return None;
    }
    runs.sort_unstable();
    Some(runs[runs.len() / 2] as f64 / f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with_lines(w: u32, h: u32, line_h: u32, tilt: f64) -> GrayImage {
        let mut g = GrayImage::from_pixel(w, h, Luma([250]));
        let mut y = 40;
        while y + line_h < h - 40 {
            // Words: dark blocks with gaps.
            let mut x = 40;
            while x + 60 < w - 40 {
                for dx in 0..50 {
                    for dy in 0..line_h {
                        let yy = (f64::from(y + dy) + f64::from(x + dx) * tilt) as u32;
                        if yy < h {
                            g.put_pixel(x + dx, yy, Luma([20]));
                        }
                    }
                }
                x += 70;
            }
            y += line_h * 2;
        }
        g
    }

    #[test]
    fn flattening_lifts_a_shadow_and_keeps_the_ink() {
        // Paper fading from 250 to 120 left to right, with dark strokes.
        let mut g = GrayImage::from_fn(480, 240, |x, _| Luma([(250 - x * 130 / 480) as u8]));
        for y in (20..220).step_by(40) {
            for x in (10..470).step_by(30) {
                for dy in 0..6 {
                    for dx in 0..12 {
                        let p = g.get_pixel_mut(x + dx, y + dy);
                        p.0[0] /= 5;
                    }
                }
            }
        }
        assert!(flatten(&mut g));
        // The paper is near white on both sides (within the dilation's
        // overestimate on this steep test gradient), the ink still dark.
        let (l, r) = (g.get_pixel(5, 5).0[0], g.get_pixel(470, 230).0[0]);
        assert!(l > 235 && r > 215, "{l} {r}");
        assert!(g.get_pixel(12, 22).0[0] < 70 && g.get_pixel(462, 22).0[0] < 70);
        // An evenly lit page is left alone.
        let mut even = GrayImage::from_pixel(480, 240, Luma([240]));
        even.put_pixel(100, 100, Luma([10]));
        let before = even.clone();
        assert!(!flatten(&mut even));
        assert_eq!(even, before);
    }

    #[test]
    fn finds_line_height_and_skew() {
        let g = page_with_lines(1200, 1600, 16, 0.0);
        let lh = line_height(&g).expect("lines");
        assert!((lh - 16.0).abs() <= 2.0, "{lh}");
        let tilted = page_with_lines(1200, 1600, 12, (4.0f64).to_radians().tan());
        let skew = estimate_skew(&tilted);
        assert!(
            (skew - 4.0).abs() < 0.6 || (skew + 4.0).abs() < 0.6,
            "{skew}"
        );
        let straight = rotate(&tilted, -skew);
        assert!(
            estimate_skew(&straight).abs() < 0.6,
            "{}",
            estimate_skew(&straight)
        );
        assert!(estimate_skew(&g).abs() < 0.3);
    }
}
