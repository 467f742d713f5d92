//! QR decoding that holds up on real photos: rqrr inside a pipeline of
//! preprocessing strategies, each decode isolated so a decoder panic (rqrr 0.11
//! has them on some photos) costs one attempt, never the kiosk.

use image::GrayImage;
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::time::{Duration, Instant};

/// One code found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// Decoded text.
    pub text: String,
    /// Which preprocessing found it.
    pub strategy: &'static str,
    /// Whether it was found in the region of interest (the part of the
    /// frame where an earlier step saw a grid it could not read).
    pub region: bool,
}

/// What a decode attempt cost and found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Codes.
    pub codes: Vec<Found>,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts whose decoder panicked.
    pub panics: u32,
    /// Where the next frame of the same scene should start
    /// ([`decode_from`]): the first step the budget left untried, or 0
    /// when a code was found or every step ran.
    pub resume: usize,
}

/// Frames are first tried at this size (longest side): rqrr's cost grows with
/// pixels, and most codes on a kiosk fill a good part of the frame.
const SMALL: u32 = 360;

/// Run `f`; a panic inside it becomes `None` (counted by the caller).
pub fn isolated<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// What one rqrr pass found: the texts it decoded, and where it saw grids
/// that did not decode (corners in the pass's image, and modules a side).
#[derive(Default)]
struct Pass {
    texts: Vec<String>,
    undecoded: Vec<([(f32, f32); 4], usize)>,
}

impl Pass {
    fn collect<G: rqrr::BitGrid>(&mut self, grids: Vec<rqrr::Grid<G>>) {
        for g in grids {
            let mut bytes = Vec::new();
            if g.decode_to(&mut bytes).is_ok() {
                self.texts.push(text_of(&bytes));
            } else {
                let c = g.bounds.map(|q| (q.x as f32, q.y as f32));
                self.undecoded.push((c, g.grid.size()));
            }
        }
    }
}

/// Below this many pixels a module, rqrr's perspective refinement (its
/// dearest step) is skipped: its samples at 0.3, 0.5 and 0.7 of a module
/// fall on one pixel or two, and the pipeline's next move for such a grid is
/// the 2x upscale anyway (see `decode_from`).
const DENSE_PX_PER_MODULE: f32 = 1.5;

/// Whether a grid of `modules` a side with these corners, in an image
/// `scale` times the frame's size, is under [`DENSE_PX_PER_MODULE`] frame
/// pixels a module.
fn too_dense(corners: &[(f32, f32); 4], modules: usize, scale: f32) -> bool {
    side(corners) / scale < DENSE_PX_PER_MODULE * modules as f32
}

/// Whether rqrr should refine the fit of a grid that did not decode: not
/// when the grid is too dense in the image rqrr works on.
fn worth_refining(modules: usize, bounds: &[rqrr::Point; 4]) -> bool {
    !too_dense(&bounds.map(|q| (q.x as f32, q.y as f32)), modules, 1.0)
}

/// One rqrr pass, isolated. `binary`: the image is already black (0) and
/// white (255), and is handed over as a bitmap.
fn rqrr_once(img: GrayImage, binary: bool, panics: &mut u32) -> Pass {
    let r = isolated(move || {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut p = if binary {
            let raw = img.as_raw();
            rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| raw[y * w + x] < 128)
        } else {
            rqrr::PreparedImage::prepare_from_luma(w, h, img.into_raw())
        };
        let mut pass = Pass::default();
        pass.collect(p.detect_grids_refining(worth_refining));
        pass
    });
    match r {
        Some(v) => v,
        None => {
            *panics += 1;
            tracing::warn!("QR decoder panicked on a frame; frame skipped");
            Pass::default()
        }
    }
}

/// The text of a code's data bytes. QR byte mode has no declared charset
/// outside ECI, and rqrr hands Kanji mode over as Shift_JIS bytes, so (as
/// ZXing does) take UTF-8 when the bytes are valid UTF-8, else Shift_JIS when
/// they are valid Shift_JIS, else ISO-8859-1, the standard's default.
pub fn text_of(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    let (s, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
    if !had_errors {
        return s.into_owned();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Local mean thresholding over a `win`×`win` window (integral image), `c`
/// below the mean is black. Row slices and branch-free stores: at 1280×960
/// this took 9 ms a call in the plain per-pixel form.
pub fn adaptive(img: &GrayImage, win: u32, c: i32) -> GrayImage {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let src = img.as_raw();
    let stride = wu + 1;
    // Wrapping sums: a window's sum is exact modulo 2^32, and is far below it.
    let mut integral = vec![0u32; stride * (hu + 1)];
    for (y, srow) in src.chunks_exact(wu.max(1)).take(hu).enumerate() {
        let (done, rest) = integral.split_at_mut((y + 1) * stride);
        let prev = &done[y * stride..];
        let mut run = 0u32;
        for (x, &p) in srow.iter().enumerate() {
            run = run.wrapping_add(u32::from(p));
            rest[x + 1] = prev[x + 1].wrapping_add(run);
        }
    }
    let r = (win / 2) as usize;
    let x0: Vec<usize> = (0..wu).map(|x| x.saturating_sub(r)).collect();
    let x1: Vec<usize> = (0..wu).map(|x| (x + r + 1).min(wu)).collect();
    let mut out = vec![255u8; wu * hu];
    for (y, orow) in out.chunks_exact_mut(wu.max(1)).take(hu).enumerate() {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(hu));
        let top = &integral[y0 * stride..(y0 + 1) * stride];
        let bot = &integral[y1 * stride..(y1 + 1) * stride];
        let rows = (y1 - y0) as i64;
        let srow = &src[y * wu..(y + 1) * wu];
        let pixel = |x: usize, a: usize, b: usize| {
            let sum = bot[b]
                .wrapping_sub(bot[a])
                .wrapping_sub(top[b])
                .wrapping_add(top[a]);
            let count = (b - a) as i64 * rows;
            let dark = i64::from(srow[x]) * count < i64::from(sum) - i64::from(c) * count;
            if dark {
                0
            } else {
                255
            }
        };
        // The window's edges are clamped only near the sides; in between
        // it is a fixed width, and the loop runs over plain slices.
        let (lo, hi) = (r.min(wu), wu.saturating_sub(r + 1).max(r.min(wu)));
        for x in (0..lo).chain(hi..wu) {
            orow[x] = pixel(x, x0[x], x1[x]);
        }
        let span = 2 * r + 1;
        let count = span as i64 * rows;
        let bias = i64::from(c) * count;
        if lo < hi {
            let (bl, br) = (&bot[..hi - r], &bot[lo + r + 1..]);
            let (tl, tr) = (&top[..hi - r], &top[lo + r + 1..]);
            for ((((o, &p), (&b1, &b0)), &t1), &t0) in orow[lo..hi]
                .iter_mut()
                .zip(&srow[lo..hi])
                .zip(br.iter().zip(bl))
                .zip(tr)
                .zip(tl)
            {
                let sum = b1.wrapping_sub(b0).wrapping_sub(t1).wrapping_add(t0);
                *o = if i64::from(p) * count < i64::from(sum) - bias {
                    0
                } else {
                    255
                };
            }
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| img.clone())
}

/// Scale by `f`: a triangle (bilinear) filter down, Catmull-Rom up, as
/// `image::imageops::resize` would, but through fast_image_resize's SIMD
/// convolutions: image's resize was a fifth of the pipeline's time.
fn resize(img: &GrayImage, f: f32) -> GrayImage {
    use fast_image_resize::{images, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let (w, h) = img.dimensions();
    let (nw, nh) = (
        ((w as f32 * f) as u32).max(1),
        ((h as f32 * f) as u32).max(1),
    );
    let filter = if f < 1.0 {
        FilterType::Bilinear
    } else {
        FilterType::CatmullRom
    };
    let fast = || -> Option<GrayImage> {
        let src = images::ImageRef::new(w, h, img.as_raw(), PixelType::U8).ok()?;
        let mut dst = images::Image::new(nw, nh, PixelType::U8);
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
        Resizer::new().resize(&src, &mut dst, &opts).ok()?;
        GrayImage::from_raw(nw, nh, dst.into_vec())
    };
    fast().unwrap_or_else(|| {
        let filter = if f < 1.0 {
            image::imageops::FilterType::Triangle
        } else {
            image::imageops::FilterType::CatmullRom
        };
        image::imageops::resize(img, nw, nh, filter)
    })
}

fn crop(img: &GrayImage, fx: f32, fy: f32, fw: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let cw = (w as f32 * fw) as u32;
    let ch = (h as f32 * fw) as u32;
    let x = ((w - cw) as f32 * fx) as u32;
    let y = ((h - ch) as f32 * fy) as u32;
    image::imageops::crop_imm(img, x, y, cw.max(1), ch.max(1)).to_image()
}

/// Decode every QR code in `img`, trying cheaper strategies first and stopping
/// at the first that finds something or when `budget` is spent.
pub fn decode(img: &GrayImage, budget: Duration) -> Report {
    decode_from(img, budget, 0)
}

/// [`decode`] for a live preview: start at step `first` (the previous
/// frame's [`Report::resume`]) and go round. On a slow CPU the budget may
/// cover only the first step of a frame; without resuming, a dense code
/// that only a later step reads would never be read at all, frame after
/// frame. With it, successive frames of the same scene cover every step.
pub fn decode_from(img: &GrayImage, budget: Duration, first: usize) -> Report {
    let start = Instant::now();
    let mut rep = Report::default();
    // Large frames are scaled down first: rqrr's cost grows with pixels, not with code size.
    let base = {
        let m = img.width().max(img.height());
        if m > 1280 {
            std::borrow::Cow::Owned(resize(img, 1280.0 / m as f32))
        } else {
            std::borrow::Cow::Borrowed(img)
        }
    };
    let min_dim = base.width().min(base.height());
    let win = (min_dim / 8).clamp(15, 101) | 1;
    // Order and choice measured on the ZXing photo sets (scripts/bench/qr): most
    // codes fall to the cheap first steps; the rest pay for the later ones.
    let max_dim = base.width().max(base.height());
    let mut steps: Vec<Step> = Vec::new();
    if max_dim > SMALL {
        let f = SMALL as f32 / max_dim as f32;
        steps.push(Step::new("small", f, move |i| resize(i, f)));
    }
    steps.push(Step::new("gray", 1.0, |i| i.clone()));
    steps.push(Step::new("adaptive", 1.0, move |i| adaptive(i, win, 7)));
    if min_dim < 480 {
        steps.push(Step::new(UPSCALE2, 2.0, |i| resize(i, 2.0)));
        steps.push(Step::new("upscale2_adaptive", 2.0, move |i| {
            adaptive(&resize(i, 2.0), win * 2 + 1, 7)
        }));
    }
    steps.push(Step::new(CROP_CENTER, 0.0, |i| {
        resize(&crop(i, 0.5, 0.5, 0.6), 1.6)
    }));
    steps.push(Step::new("blur_adaptive", 1.0, move |i| {
        adaptive(&image::imageops::blur(i, 1.2), win, 5)
    }));
    // Last resorts for fine modules that the 2x steps overshoot or never reach
    // (frames up to 720 px): a 1.5x upscale, or an unsharp mask, then local threshold.
    if min_dim <= 720 {
        let w15 = (win * 3 / 2) | 1;
        steps.push(Step::new("upscale15_adaptive", 1.5, move |i| {
            adaptive(&resize(i, 1.5), w15, 7)
        }));
        steps.push(Step::new("sharpen_adaptive", 1.0, move |i| {
            adaptive(&image::imageops::unsharpen(i, 2.0, 3), win, 7)
        }));
    }
    let n = steps.len();
    let first = if first < n { first } else { 0 };
    // Once a step has seen a grid it could not read, the later steps work
    // on that region only: the same code at a fraction of the pixels.
    let mut roi: Option<(GrayImage, Roi)> = None;
    let mut order: Vec<usize> = (0..n).map(|k| (first + k) % n).collect();
    let mut pos = 0;
    while pos < order.len() {
        let i = order[pos];
        pos += 1;
        if start.elapsed() > budget && rep.attempts > 0 {
            rep.resume = i;
            break;
        }
        let step = &steps[i];
        if roi.is_some() && step.name == CROP_CENTER {
            continue;
        }
        let input: &GrayImage = roi.as_ref().map_or(&base, |(img, _)| img);
        let prepared = (step.prep)(input);
        rep.attempts += 1;
        // Binarised steps skip rqrr's own thresholding: a second threshold
        // of a black-and-white image only costs time.
        let pass = rqrr_once(prepared, step.name.ends_with("adaptive"), &mut rep.panics);
        if !pass.texts.is_empty() {
            rep.codes = pass
                .texts
                .into_iter()
                .map(|text| Found {
                    text,
                    strategy: step.name,
                    region: roi.is_some(),
                })
                .collect();
            break;
        }
        if step.scale > 0.0 {
            // A grid seen at under 1.5 px a module cannot be sampled
            // reliably at this size: the 2x upscale goes next.
            let dense = pass
                .undecoded
                .iter()
                .any(|(c, modules)| too_dense(c, *modules, step.scale));
            if dense {
                if let Some(up) = order[pos..].iter().position(|&j| steps[j].name == UPSCALE2) {
                    let j = order.remove(pos + up);
                    order.insert(pos, j);
                }
            }
            if roi.is_none() {
                roi = Roi::around(&pass.undecoded, step.scale, base.dimensions())
                    .map(|r| (r.crop(&base), r));
            }
        }
    }
    rep
}

/// The mean side of a quadrilateral.
fn side(c: &[(f32, f32); 4]) -> f32 {
    (0..4)
        .map(|k| {
            let (a, b) = (c[k], c[(k + 1) % 4]);
            (a.0 - b.0).hypot(a.1 - b.1)
        })
        .sum::<f32>()
        / 4.0
}

/// The 2x upscale step, which a dense grid jumps to.
const UPSCALE2: &str = "upscale2";

/// The step that crops the frame's centre; the region of interest, once
/// known, replaces it.
const CROP_CENTER: &str = "crop_center";

/// One preprocessing step.
struct Step {
    name: &'static str,
    /// The prepared image's scale against its input (0: not a plain
    /// scale, so no region is taken from what it sees).
    scale: f32,
    prep: Box<dyn Fn(&GrayImage) -> GrayImage>,
}

impl Step {
    fn new(
        name: &'static str,
        scale: f32,
        prep: impl Fn(&GrayImage) -> GrayImage + 'static,
    ) -> Self {
        Step {
            name,
            scale,
            prep: Box::new(prep),
        }
    }
}

/// A region of the frame around grids seen but not read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Roi {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

impl Roi {
    /// The box around every `undecoded` grid (corners in an image `scale`
    /// times the frame's size), with a margin of a quarter of its side
    /// (the quiet zone, and corners a poor fit misplaced), at least 16 px.
    /// None when nothing was seen, or when the box would not save much.
    fn around(
        undecoded: &[([(f32, f32); 4], usize)],
        scale: f32,
        (fw, fh): (u32, u32),
    ) -> Option<Self> {
        let pts = undecoded.iter().flat_map(|(c, _)| c.iter());
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &(x, y) in pts {
            let (x, y) = (x / scale, y / scale);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        if x0 > x1 || !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            return None;
        }
        let m = ((x1 - x0).max(y1 - y0) / 4.0).max(16.0);
        let cx0 = (x0 - m).max(0.0) as u32;
        let cy0 = (y0 - m).max(0.0) as u32;
        let cx1 = ((x1 + m).max(0.0) as u32).min(fw);
        let cy1 = ((y1 + m).max(0.0) as u32).min(fh);
        let (w, h) = (cx1.saturating_sub(cx0), cy1.saturating_sub(cy0));
        // Under half the frame's pixels, or the crop is not worth it (and
        // at three quarters a poorly fitted grid's box cut a code in two on
        // the ZXing set).
        if w < 21 || h < 21 || u64::from(w) * u64::from(h) * 2 > u64::from(fw) * u64::from(fh) {
            return None;
        }
        Some(Roi {
            x: cx0,
            y: cy0,
            w,
            h,
        })
    }

    fn crop(&self, img: &GrayImage) -> GrayImage {
        image::imageops::crop_imm(img, self.x, self.y, self.w, self.h).to_image()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_resumes_on_the_next_frame_at_the_step_it_left() {
        // A dense code (version 25 or so, as a CHMED23A plan) at 4 px a
        // module: the downscaled first step cannot read it, full size can.
        let text: String = (0..1100u32)
            .map(|i| {
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(i * 7 + i / 3) as usize % 64],
                )
            })
            .collect();
        let img = crate::camera::SimCamera::render_qr(&text).unwrap();
        // No budget at all: one step per frame.
        let zero = Duration::ZERO;
        let first = decode_from(&img, zero, 0);
        assert_eq!(
            (first.attempts, first.codes.len()),
            (1, 0),
            "the small step misses it"
        );
        assert_eq!(first.resume, 1);
        let second = decode_from(&img, zero, first.resume);
        assert_eq!(
            second.codes.len(),
            1,
            "the next frame starts at the next step"
        );
        assert_eq!(second.codes[0].text, text);
        assert_eq!(second.codes[0].strategy, "gray");
        assert_eq!(
            second.resume, 0,
            "found: the frame after starts cheap again"
        );
        // A resume point past the end (a smaller frame has fewer steps) starts at 0.
        assert_eq!(decode_from(&img, zero, 99).attempts, 1);
        assert_eq!(decode_from(&img, zero, 99).resume, 1);
    }

    #[test]
    fn the_region_of_interest_boxes_unread_grids_with_a_margin() {
        let quad = |x0: f32, y0: f32, x1: f32, y1: f32| [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
        // Seen at 2x in a 640x480 frame: 100..200 frame px, a quarter of
        // the side (25 px) as margin.
        let seen = [(quad(200.0, 200.0, 400.0, 400.0), 25)];
        assert_eq!(
            Roi::around(&seen, 2.0, (640, 480)),
            Some(Roi {
                x: 75,
                y: 75,
                w: 150,
                h: 150
            })
        );
        // Clamped at the frame's edge, and at least 16 px of margin.
        let seen = [(quad(0.0, 10.0, 40.0, 50.0), 21)];
        assert_eq!(
            Roi::around(&seen, 1.0, (640, 480)),
            Some(Roi {
                x: 0,
                y: 0,
                w: 56,
                h: 66
            })
        );
        // Two grids: one box around both.
        let seen = [
            (quad(10.0, 10.0, 50.0, 50.0), 21),
            (quad(100.0, 60.0, 140.0, 100.0), 21),
        ];
        let r = Roi::around(&seen, 1.0, (640, 480));
        assert_eq!(
            r.map(|r| (r.x, r.y, r.x + r.w, r.y + r.h)),
            Some((0, 0, 172, 132))
        );
        // Nothing seen, or a box over half the frame: no region.
        assert_eq!(Roi::around(&[], 1.0, (640, 480)), None);
        let big = [(quad(50.0, 50.0, 590.0, 430.0), 41)];
        assert_eq!(Roi::around(&big, 1.0, (640, 480)), None);
    }

    #[test]
    fn code_bytes_become_text_as_utf8_then_shift_jis_then_latin1() {
        assert_eq!(text_of("Grüezi 日本".as_bytes()), "Grüezi 日本");
        // 日本 in Shift_JIS, as rqrr gives Kanji mode.
        assert_eq!(text_of(&[0x93, 0xfa, 0x96, 0x7b]), "日本");
        // Not UTF-8, not Shift_JIS: ISO-8859-1.
        assert_eq!(text_of(&[b'a', 0xe9, 0xff]), "aéÿ");
    }

    #[test]
    fn adaptive_threshold_separates_a_gradient_lit_pattern() {
        // Dark squares on a background that brightens left to right: a global
        // threshold loses one side; a local one keeps both.
        let img = GrayImage::from_fn(200, 50, |x, y| {
            let light = 60 + (x as u8 / 2);
            let dark = (x / 20 + y / 25) % 2 == 0;
            image::Luma([if dark {
                light.saturating_sub(50)
            } else {
                light
            }])
        });
        let b = adaptive(&img, 41, 5);
        // Dark squares at x 0..20 and 160..180 (row 5), light ones at 20..40 and 180..200.
        let black = |r: std::ops::Range<u32>| r.filter(|x| b.get_pixel(*x, 5).0[0] == 0).count();
        assert!(
            black(5..15) == 10 && black(165..175) == 10,
            "{} {}",
            black(5..15),
            black(165..175)
        );
        assert!(
            black(25..35) == 0 && black(185..195) == 0,
            "{} {}",
            black(25..35),
            black(185..195)
        );
        // A global threshold at the mean grey would make one end all black or all white.
        let mean = img.pixels().map(|p| u32::from(p.0[0])).sum::<u32>() / (200 * 50);
        let global = |x: u32| u32::from(img.get_pixel(x, 5).0[0]) < mean;
        assert!(
            global(30) == global(10) || global(190) == global(170),
            "the pattern needs local thresholds"
        );
    }

    #[test]
    fn adaptive_threshold_equals_the_window_mean_rule_computed_directly() {
        // The integral-image version against the definition, on noise with
        // windows that hang over every edge.
        let mut seed = 0x2545_f491_u32;
        let img = GrayImage::from_fn(37, 23, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            image::Luma([(seed >> 24) as u8])
        });
        for (win, c) in [(3, 0), (15, 7), (9, -4), (101, 5)] {
            let fast = adaptive(&img, win, c);
            let r = (win / 2) as i64;
            for (x, y, p) in img.enumerate_pixels() {
                let (mut sum, mut n) = (0i64, 0i64);
                for yy in (y as i64 - r).max(0)..=(y as i64 + r).min(22) {
                    for xx in (x as i64 - r).max(0)..=(x as i64 + r).min(36) {
                        sum += i64::from(img.get_pixel(xx as u32, yy as u32).0[0]);
                        n += 1;
                    }
                }
                let dark = i64::from(p.0[0]) * n < sum - i64::from(c) * n;
                assert_eq!(
                    fast.get_pixel(x, y).0[0],
                    if dark { 0 } else { 255 },
                    "pixel {x},{y} win {win} c {c}"
                );
            }
        }
    }

    #[test]
    fn a_panicking_decoder_costs_one_attempt_not_the_process() {
        let v: Option<u32> = isolated(|| panic!("assertion failed: x <= i32::MAX as f64"));
        assert_eq!(v, None);
        assert_eq!(isolated(|| 7), Some(7));
    }

    #[test]
    fn a_blank_frame_finds_nothing_and_does_not_panic() {
        let img = GrayImage::from_pixel(320, 240, image::Luma([128]));
        let r = decode(&img, Duration::from_millis(500));
        assert!(r.codes.is_empty());
        assert!(r.attempts >= 1);
    }
}
