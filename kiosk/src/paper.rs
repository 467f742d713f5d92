//! Paper capture: a quality gate that tells the patient what to change, then
//! crop, deskew and JPEG. Pure functions over greyscale frames.

use image::GrayImage;
use serde::Serialize;

/// What the patient should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    /// Ready: capture.
    Good,
    /// Blurred: hold still.
    HoldStill,
    /// The page is too small in the frame: move closer.
    MoveCloser,
    /// Glare or overexposure: less light / tilt the page.
    LessLight,
    /// Too dark.
    MoreLight,
    /// No page in view.
    ShowPage,
}

/// Measurements of one frame.
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    /// Variance of the Laplacian (focus; higher is sharper).
    pub sharpness: f64,
    /// Mean brightness 0–255.
    pub brightness: f64,
    /// Share of saturated pixels (glare).
    pub glare: f64,
    /// Share of the frame the page's bounding box covers.
    pub page_fill: f64,
    /// The single most useful instruction.
    pub advice: Advice,
}

/// Thresholds of the gate.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// Minimum variance of the Laplacian.
    pub min_sharpness: f64,
    /// Maximum share of saturated pixels.
    pub max_glare: f64,
    /// Minimum share of the frame the page covers.
    pub min_fill: f64,
    /// Brightness range.
    pub brightness: (f64, f64),
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            min_sharpness: 60.0,
            max_glare: 0.03,
            min_fill: 0.45,
            brightness: (70.0, 235.0),
        }
    }
}

/// Otsu's threshold of the frame's histogram.
pub fn otsu(img: &GrayImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in img.as_raw() {
        hist[*p as usize] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, c)| i as f64 * *c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0f64, 0f64, -1f64, 0u8);
    for (t, c) in hist.iter().enumerate() {
        w0 += *c as f64;
        if w0 == 0.0 {
            continue;
        }
        let w1 = total as f64 - w0;
        if w1 == 0.0 {
            break;
        }
        sum0 += t as f64 * *c as f64;
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

/// Bounding box (x, y, w, h) of the bright page region, ignoring stray pixels.
pub fn page_box(img: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let t = otsu(img);
    let (w, h) = img.dimensions();
    let raw = img.as_raw();
    // A row or column belongs to the page when a fifth of it is paper-bright.
    let rows: Vec<bool> = (0..h)
        .map(|y| (0..w).filter(|x| raw[(y * w + x) as usize] > t).count() as u32 * 5 > w)
        .collect();
    let cols: Vec<bool> = (0..w)
        .map(|x| (0..h).filter(|y| raw[(y * w + x) as usize] > t).count() as u32 * 5 > h)
        .collect();
    let y0 = rows.iter().position(|r| *r)? as u32;
    let y1 = rows.iter().rposition(|r| *r)? as u32;
    let x0 = cols.iter().position(|c| *c)? as u32;
    let x1 = cols.iter().rposition(|c| *c)? as u32;
    Some((x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// Measure a frame and decide what to say.
pub fn assess(img: &GrayImage, gate: &Gate) -> Quality {
    let (w, h) = img.dimensions();
    let raw = img.as_raw();
    let bx = page_box(img);
    // Light is judged on the page itself, not the desk around it.
    let (brightness, glare) = {
        let (x0, y0, bw, bh) = bx
            .filter(|b| b.2 * b.3 * 20 > w * h)
            .unwrap_or((0, 0, w, h));
        let (mut sum, mut sat, mut n) = (0f64, 0f64, 0f64);
        for y in y0..y0 + bh {
            for x in x0..x0 + bw {
                let v = raw[(y * w + x) as usize];
                sum += f64::from(v);
                sat += f64::from(u8::from(v >= 250));
                n += 1.0;
            }
        }
        (sum / n.max(1.0), sat / n.max(1.0))
    };
    // Variance of the 4-neighbour Laplacian, on every second pixel (enough, and half the cost).
    let (mut s, mut s2, mut k) = (0f64, 0f64, 0f64);
    let px = |x: u32, y: u32| f64::from(raw[(y * w + x) as usize]);
    for y in (1..h.saturating_sub(1)).step_by(2) {
        for x in (1..w.saturating_sub(1)).step_by(2) {
            let l = px(x - 1, y) + px(x + 1, y) + px(x, y - 1) + px(x, y + 1) - 4.0 * px(x, y);
            s += l;
            s2 += l * l;
            k += 1.0;
        }
    }
    let sharpness = if k > 0.0 {
        s2 / k - (s / k).powi(2)
    } else {
        0.0
    };
    let page_fill = bx.map_or(0.0, |(_, _, bw, bh)| {
        f64::from(bw) * f64::from(bh) / (f64::from(w) * f64::from(h)).max(1.0)
    });
    let advice = if brightness < gate.brightness.0 {
        Advice::MoreLight
    } else if glare > gate.max_glare || brightness > gate.brightness.1 {
        Advice::LessLight
    } else if page_fill < 0.05 {
        Advice::ShowPage
    } else if page_fill < gate.min_fill {
        Advice::MoveCloser
    } else if sharpness < gate.min_sharpness {
        Advice::HoldStill
    } else {
        Advice::Good
    };
    Quality {
        sharpness,
        brightness,
        glare,
        page_fill,
        advice,
    }
}

fn rotate(img: &GrayImage, degrees: f64) -> GrayImage {
    let (w, h) = img.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
        let sx = cos * dx + sin * dy + cx;
        let sy = -sin * dx + cos * dy + cy;
        if sx >= 0.0 && sy >= 0.0 && sx < f64::from(w) && sy < f64::from(h) {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Luma([255])
        }
    })
}

/// Skew of text lines, in degrees: the angle whose rotation makes dark pixels
/// bunch into the fewest rows (projection-profile variance).
pub fn skew_degrees(img: &GrayImage) -> f64 {
    // Work on a small copy: the estimate needs lines, not detail.
    let small = image::imageops::resize(
        img,
        (img.width() / 2).max(1),
        (img.height() / 2).max(1),
        image::imageops::FilterType::Triangle,
    );
    let t = otsu(&small);
    let score = |deg: f64| {
        let r = rotate(&small, deg);
        let (w, h) = r.dimensions();
        let rows: Vec<f64> = (0..h)
            .map(|y| (0..w).filter(|x| r.get_pixel(*x, y).0[0] <= t).count() as f64)
            .collect();
        let m = rows.iter().sum::<f64>() / rows.len().max(1) as f64;
        rows.iter().map(|v| (v - m) * (v - m)).sum::<f64>()
    };
    let mut best = (0.0, score(0.0));
    let mut deg = -8.0;
    while deg <= 8.0 {
        let s = score(deg);
        if s > best.1 {
            best = (deg, s);
        }
        deg += 1.0;
    }
    // Refine around the best whole degree.
    let base = best.0;
    for i in -4..=4 {
        let d = base + f64::from(i) * 0.25;
        let s = score(d);
        if s > best.1 {
            best = (d, s);
        }
    }
    best.0
}

/// Crop to the page, straighten the text lines, encode as JPEG.
pub fn finish(img: &GrayImage) -> Result<Vec<u8>, image::ImageError> {
    let page = match page_box(img) {
        Some((x, y, w, h)) => image::imageops::crop_imm(img, x, y, w, h).to_image(),
        None => img.clone(),
    };
    let skew = skew_degrees(&page);
    let straight = if skew.abs() >= 0.25 {
        rotate(&page, skew)
    } else {
        page
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&straight)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white page with black "text lines" on a dark desk.
    fn page(scale: f64, blur: f32, light: u8) -> GrayImage {
        let (w, h) = (640u32, 480u32);
        let (pw, ph) = ((f64::from(w) * scale) as u32, (f64::from(h) * scale) as u32);
        let (x0, y0) = ((w - pw) / 2, (h - ph) / 2);
        let img = GrayImage::from_fn(w, h, |x, y| {
            let inside = x >= x0 && x < x0 + pw && y >= y0 && y < y0 + ph;
            if !inside {
                return image::Luma([40]);
            }
            let line =
                (y - y0) % 16 < 4 && (x - x0) % 12 < 9 && (x - x0) > 20 && (x - x0) < pw - 20;
            image::Luma([if line { 20 } else { light }])
        });
        if blur > 0.0 {
            image::imageops::blur(&img, blur)
        } else {
            img
        }
    }

    #[test]
    fn a_sharp_well_lit_page_filling_the_frame_is_good() {
        let q = assess(&page(0.85, 0.0, 215), &Gate::default());
        assert_eq!(q.advice, Advice::Good, "{q:?}");
    }

    #[test]
    fn each_fault_gets_its_own_advice() {
        let g = Gate::default();
        assert_eq!(assess(&page(0.85, 3.0, 215), &g).advice, Advice::HoldStill);
        assert_eq!(assess(&page(0.35, 0.0, 215), &g).advice, Advice::MoveCloser);
        assert_eq!(assess(&page(0.85, 0.0, 255), &g).advice, Advice::LessLight);
        assert_eq!(
            assess(&GrayImage::from_pixel(320, 240, image::Luma([20])), &g).advice,
            Advice::MoreLight
        );
    }

    #[test]
    fn skew_is_measured_and_undone() {
        let p = page(0.9, 0.0, 215);
        let tilted = rotate(&p, -4.0);
        let s = skew_degrees(&tilted);
        assert!((s - 4.0).abs() <= 0.5, "measured {s}");
        assert!(skew_degrees(&p).abs() <= 0.5);
    }

    #[test]
    fn finish_crops_to_the_page_and_encodes_jpeg() -> Result<(), image::ImageError> {
        let jpeg = finish(&page(0.7, 0.0, 215))?;
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&jpeg)?.to_luma8();
        assert!(back.width() < 640 && back.width() > 400, "{}", back.width());
        Ok(())
    }
}
