use std::{cmp, num::NonZeroUsize};

use crate::identify::match_capstones::CapStoneGroup;
use crate::identify::Point;
use lru::LruCache;

/// An black-and-white image that can be mutated on search for QR codes
///
/// During search for QR codes, some black zones will be recolored in
/// 'different' shades of black. This is done to speed up the search and
/// mitigate the impact of a huge zones.
pub struct PreparedImage<S> {
    buffer: S,
    cache: LruCache<u8, ColoredRegion>,
}

impl<S> Clone for PreparedImage<S>
where
    S: Clone,
{
    fn clone(&self) -> Self {
        let mut cache = LruCache::new(self.cache.cap());
        for (k, v) in self.cache.iter() {
            cache.put(*k, *v);
        }

        PreparedImage {
            buffer: self.buffer.clone(),
            cache,
        }
    }
}

pub trait ImageBuffer {
    fn width(&self) -> usize;
    fn height(&self) -> usize;

    fn get_pixel(&self, x: usize, y: usize) -> u8;
    fn set_pixel(&mut self, x: usize, y: usize, val: u8);
}

#[cfg(feature = "img")]
impl<
        T: image::GenericImage<Pixel = image::Luma<u8>>
            + image::GenericImageView<Pixel = image::Luma<u8>>,
    > ImageBuffer for T
{
    fn width(&self) -> usize {
        self.width() as usize
    }

    fn height(&self) -> usize {
        self.height() as usize
    }

    fn get_pixel(&self, x: usize, y: usize) -> u8 {
        self.get_pixel(x as u32, y as u32).0[0]
    }

    fn set_pixel(&mut self, x: usize, y: usize, val: u8) {
        let pixel = image::Luma::<u8>::from([val; 1]);

        self.put_pixel(x as u32, y as u32, pixel);
    }
}

#[derive(Clone, Debug)]
pub struct BasicImageBuffer {
    w: usize,
    h: usize,
    pixels: Box<[u8]>,
}

impl ImageBuffer for BasicImageBuffer {
    fn width(&self) -> usize {
        self.w
    }

    fn height(&self) -> usize {
        self.h
    }

    fn get_pixel(&self, x: usize, y: usize) -> u8 {
        let w = self.width();
        self.pixels[(y * w) + x]
    }

    fn set_pixel(&mut self, x: usize, y: usize, val: u8) {
        let w = self.width();
        self.pixels[(y * w) + x] = val
    }
}

#[derive(Debug, Clone, Copy, Eq, PartialEq)]
pub struct Row {
    pub left: usize,
    pub right: usize,
    pub y: usize,
}

#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum PixelColor {
    White,
    Black,
    CapStone,
    Alignment,
    Tmp1,
    Discarded(u8),
}

#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum ColoredRegion {
    Unclaimed {
        color: PixelColor,
        src_x: usize,
        src_y: usize,
        pixel_count: usize,
    },
    CapStone,
    Alignment,
    Tmp1,
}

impl From<u8> for PixelColor {
    #[inline]
    fn from(x: u8) -> Self {
        match x {
            0 => PixelColor::White,
            1 => PixelColor::Black,
            2 => PixelColor::CapStone,
            3 => PixelColor::Alignment,
            4 => PixelColor::Tmp1,
            x => PixelColor::Discarded(x - 5),
        }
    }
}

impl From<PixelColor> for u8 {
    fn from(c: PixelColor) -> Self {
        match c {
            PixelColor::White => 0,
            PixelColor::Black => 1,
            PixelColor::CapStone => 2,
            PixelColor::Alignment => 3,
            PixelColor::Tmp1 => 4,
            PixelColor::Discarded(x) => x + 5,
        }
    }
}

impl PartialEq<u8> for PixelColor {
    fn eq(&self, other: &u8) -> bool {
        let rep: u8 = (*self).into();
        rep == *other
    }
}

pub trait AreaFiller {
    fn update(&mut self, row: Row);
}

impl<F> AreaFiller for F
where
    F: FnMut(Row),
{
    fn update(&mut self, row: Row) {
        self(row)
    }
}

/// Exact integer division by a divisor fixed for a whole image, by
/// multiplication (Lemire, Kaser and Kurz, "Faster remainder by direct
/// computation", 2019): `n / d == (n * ceil(2^64 / d)) >> 64` for every
/// `n < 2^32`. Larger numerators fall back to a real division.
struct ExactDiv {
    d: usize,
    m: u128,
}

impl ExactDiv {
    fn new(d: usize) -> Self {
        let d = cmp::max(d, 1);
        ExactDiv {
            d,
            m: (1u128 << 64) / d as u128 + u128::from((1u128 << 64) % d as u128 != 0),
        }
    }

    #[inline]
    fn div(&self, n: usize) -> usize {
        if n < (1 << 32) {
            ((n as u128 * self.m) >> 64) as usize
        } else {
            n / self.d
        }
    }
}

/// A grid location's corners in the image: top-left, top-right,
/// bottom-right, bottom-left.
fn bounds_of(loc: &crate::SkewedGridLocation) -> [Point; 4] {
    let n = loc.grid_size as f64 + 1.0;
    [
        loc.c.map(0.0, 0.0),
        loc.c.map(n, 0.0),
        loc.c.map(n, n),
        loc.c.map(0.0, n),
    ]
}

struct AreaCounter(usize);

impl AreaFiller for AreaCounter {
    fn update(&mut self, row: Row) {
        self.0 += row.right - row.left + 1;
    }
}

impl<S> PreparedImage<S>
where
    S: ImageBuffer,
{
    /// An image and an empty region cache. (The one place the cache is
    /// made; 0.11.0 spelled it out in each constructor.)
    fn with_buffer(buffer: S) -> Self {
        const REGIONS: NonZeroUsize = match NonZeroUsize::new(251) {
            Some(n) => n,
            None => panic!("251 is not zero"),
        };
        PreparedImage {
            buffer,
            cache: LruCache::new(REGIONS),
        }
    }

    pub fn prepare(mut buf: S) -> Self {
        let w = buf.width();
        let h = buf.height();
        let mut row_average = vec![0; w];
        let mut avg_v = 0;
        let mut avg_u = 0;

        let threshold_s = cmp::max(w / 8, 1);
        // The two divisions per pixel below dominated this loop; both are
        // replaced by exact equivalents (same image, bit for bit).
        let decay = ExactDiv::new(threshold_s);
        let scale = 200 * threshold_s;

        // One row at a time in a plain buffer: the trait's per-pixel
        // accessors, three per pixel, cost as much as the arithmetic.
        let mut row = vec![0u8; w];
        for y in 0..h {
            row_average.fill(0);
            for (x, p) in row.iter_mut().enumerate() {
                *p = buf.get_pixel(x, y);
            }

            for x in 0..w {
                let (v, u) = if y % 2 == 0 {
                    (w - 1 - x, x)
                } else {
                    (x, w - 1 - x)
                };
                avg_v = decay.div(avg_v * (threshold_s - 1)) + row[v] as usize;
                avg_u = decay.div(avg_u * (threshold_s - 1)) + row[u] as usize;
                row_average[v] += avg_v;
                row_average[u] += avg_u;
            }

            #[allow(clippy::needless_range_loop)]
            for x in 0..w {
                // p < floor(a * 95 / scale)  <=>  (p + 1) * scale <= a * 95
                let fill = if (row[x] as usize + 1) * scale <= row_average[x] * (100 - 5) {
                    PixelColor::Black
                } else {
                    PixelColor::White
                };
                buf.set_pixel(x, y, fill.into());
            }
        }

        Self::with_buffer(buf)
    }

    /// Group [CapStones](struct.CapStone.html) into [Grids](struct.Grid.html)
    /// that are likely QR codes
    ///
    /// Return a vector of Grids
    pub fn detect_grids<'a>(
        &'a mut self,
    ) -> Vec<crate::Grid<crate::identify::grid::RefGridImage<'a, S>>>
    where
        S: Clone,
    {
        self.detect_grids_refining(|_, _| true)
    }

    /// [`detect_grids`](Self::detect_grids), with a say in the perspective
    /// refinement: a grid that does not decode with its first fit is refined
    /// only when `refine(grid_size, bounds)` returns true, `bounds` being its
    /// corners in the image as in [`Grid::bounds`](crate::Grid). The
    /// refinement is the dearest step of detection; a caller with a better
    /// next move for some grids (upscaling one whose modules are a pixel
    /// wide, say) can skip it for them. (An RxEdge addition.)
    pub fn detect_grids_refining<'a>(
        &'a mut self,
        mut refine: impl FnMut(usize, &[Point; 4]) -> bool,
    ) -> Vec<crate::Grid<crate::identify::grid::RefGridImage<'a, S>>>
    where
        S: Clone,
    {
        let stones = crate::capstones_from_image(self);
        // The grouping step has already fitted each group's grid (on a copy of
        // the image); 0.11.0 fitted every group a second time here, which
        // doubled the cost of the perspective fit, the bulk of detection.
        let mut locations = self.find_groupings(stones);
        // quirc's perspective refinement (81 fitness passes) is the dearest
        // step, and most grids decode on the first fit; refine only the rest.
        for loc in &mut locations {
            let quick = crate::identify::grid::RefGridImage {
                grid: loc.clone(),
                img: &*self,
            };
            if crate::decode::decode(&quick, std::io::sink()).is_err()
                && refine(loc.grid_size, &bounds_of(loc))
            {
                loc.c =
                    crate::identify::grid::jiggle_perspective(self, loc.c.clone(), loc.grid_size);
            }
        }
        let img: &'a Self = self;
        locations
            .into_iter()
            .map(|grid_location| {
                let bounds = bounds_of(&grid_location);
                let grid = grid_location.into_grid_image(img);
                crate::Grid { grid, bounds }
            })
            .collect()
    }

    /// Find CapStones that form a grid
    ///
    /// By trying to match up the relative perspective of 3
    /// [CapStones](struct.CapStone.html) along with other criteria we can find the
    /// CapStones that corner the same QR code.
    fn find_groupings(&mut self, capstones: Vec<crate::CapStone>) -> Vec<crate::SkewedGridLocation>
    where
        S: Clone,
    {
        let mut used_capstones = Vec::new();
        let mut groups = Vec::new();
        for idx in 0..capstones.len() {
            if used_capstones.contains(&idx) {
                continue;
            }
            let pairs = crate::identify::find_and_rank_possible_neighbors(&capstones, idx);
            for pair in pairs {
                if used_capstones.contains(&pair.0) || used_capstones.contains(&pair.1) {
                    continue;
                }
                let group_under_test = CapStoneGroup(
                    capstones[pair.0].clone(),
                    capstones[idx].clone(),
                    capstones[pair.1].clone(),
                );
                // Confirm that this group has the other requirements of a QR code.
                // A copy of the input image is used to not contaminate the
                // original on an incorrect set of CapStones
                let mut image_copy = self.clone();
                let Some(location) =
                    crate::SkewedGridLocation::from_group(&mut image_copy, group_under_test)
                else {
                    continue;
                };
                // This is a viable set, save this grouping
                groups.push(location);
                used_capstones.push(pair.0);
                used_capstones.push(idx);
                used_capstones.push(pair.1);
            }
        }
        groups
    }

    pub fn without_preparation(buf: S) -> Self {
        for y in 0..buf.height() {
            for x in 0..buf.width() {
                assert!(buf.get_pixel(x, y) < 2);
            }
        }

        Self::with_buffer(buf)
    }

    /// Return the width of the image
    pub fn width(&self) -> usize {
        self.buffer.width()
    }

    /// Return the height of the image
    pub fn height(&self) -> usize {
        self.buffer.height()
    }

    pub(crate) fn get_region(&mut self, (x, y): (usize, usize)) -> ColoredRegion {
        let color: PixelColor = self.buffer.get_pixel(x, y).into();
        match color {
            PixelColor::Discarded(r) => *self.cache.get(&r).unwrap(),
            PixelColor::Black => {
                let cache_fill = self.cache.len();
                let reg_idx = if cache_fill == self.cache.cap().get() {
                    let (c, reg) = self.cache.pop_lru().expect("fill is at capacity (251)");
                    #[allow(clippy::single_match)]
                    match reg {
                        ColoredRegion::Unclaimed {
                            src_x,
                            src_y,
                            color,
                            ..
                        } => {
                            let _ = self.flood_fill(
                                src_x,
                                src_y,
                                color.into(),
                                PixelColor::Black.into(),
                                |_| (),
                            );
                        }
                        _ => (),
                    }
                    c
                } else {
                    cache_fill as u8
                };
                let next_reg_color = PixelColor::Discarded(reg_idx);
                let counter = self.repaint_and_apply((x, y), next_reg_color, AreaCounter(0));
                let new_reg = ColoredRegion::Unclaimed {
                    color: next_reg_color,
                    src_x: x,
                    src_y: y,
                    pixel_count: counter.0,
                };
                self.cache.put(reg_idx, new_reg);
                new_reg
            }
            PixelColor::Tmp1 => ColoredRegion::Tmp1,
            PixelColor::Alignment => ColoredRegion::Alignment,
            PixelColor::CapStone => ColoredRegion::CapStone,
            PixelColor::White => panic!("Tried to color white patch"),
        }
    }

    pub(crate) fn repaint_and_apply<F>(
        &mut self,
        (x, y): (usize, usize),
        target_color: PixelColor,
        fill: F,
    ) -> F
    where
        F: AreaFiller,
    {
        let src = self.buffer.get_pixel(x, y);
        if PixelColor::White == src || target_color == src {
            panic!("Cannot repaint with white or same color");
        }

        self.flood_fill(x, y, src, target_color.into(), fill)
    }

    /// The stored value at an in-bounds pixel (0 is white).
    #[inline]
    pub(crate) fn raw_pixel(&self, x: usize, y: usize) -> u8 {
        self.buffer.get_pixel(x, y)
    }

    pub fn get_pixel_at_point(&self, p: Point) -> PixelColor {
        let x = cmp::max(0, cmp::min((self.width() - 1) as i32, p.x));
        let y = cmp::max(0, cmp::min((self.height() - 1) as i32, p.y));
        self.buffer.get_pixel(x as usize, y as usize).into()
    }

    #[inline]
    pub fn get_pixel_at(&self, x: usize, y: usize) -> PixelColor {
        self.buffer.get_pixel(x, y).into()
    }

    #[cfg(feature = "img")]
    pub fn write_state_to(&self, p: &str) {
        let mut dyn_img = image::RgbImage::new(self.width() as u32, self.height() as u32);
        const COLORS: [[u8; 3]; 8] = [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 0],
            [255, 0, 255],
            [0, 255, 255],
            [128, 128, 128],
            [128, 0, 128],
        ];
        for y in 0..self.height() {
            for x in 0..self.width() {
                let px = self.buffer.get_pixel(x, y);
                dyn_img.get_pixel_mut(x as u32, y as u32).0 = if px == 0 {
                    [255, 255, 255]
                } else if px == 1 {
                    [0, 0, 0]
                } else {
                    let i = self.buffer.get_pixel(x, y) - 2;
                    COLORS[(i % 8) as usize]
                }
            }
        }
        dyn_img.save(p).unwrap();
    }

    fn flood_fill<F>(&mut self, x: usize, y: usize, from: u8, to: u8, mut fill: F) -> F
    where
        F: AreaFiller,
    {
        assert_ne!(from, to);
        let w = self.width();
        let mut queue = Vec::new();
        queue.push((x, y));

        while let Some((x, y)) = queue.pop() {
            // Bail early in case there is nothing to fill
            if self.buffer.get_pixel(x, y) == to || self.buffer.get_pixel(x, y) != from {
                continue;
            }

            let mut left = x;
            let mut right = x;

            while left > 0 && self.buffer.get_pixel(left - 1, y) == from {
                left -= 1;
            }
            while right < w - 1 && self.buffer.get_pixel(right + 1, y) == from {
                right += 1
            }

            /* Fill the extent */
            for idx in left..=right {
                self.buffer.set_pixel(idx, y, to);
            }

            fill.update(Row { left, right, y });

            /* Seed new flood-fills */
            if y > 0 {
                let mut seeded_previous = false;
                for x in left..=right {
                    let p = self.buffer.get_pixel(x, y - 1);
                    if p == from {
                        if !seeded_previous {
                            queue.push((x, y - 1));
                        }
                        seeded_previous = true;
                    } else {
                        seeded_previous = false;
                    }
                }
            }
            if y < self.height() - 1 {
                let mut seeded_previous = false;
                for x in left..=right {
                    let p = self.buffer.get_pixel(x, y + 1);
                    if p == from {
                        if !seeded_previous {
                            queue.push((x, y + 1));
                        }
                        seeded_previous = true;
                    } else {
                        seeded_previous = false;
                    }
                }
            }
        }
        fill
    }
}

impl PreparedImage<BasicImageBuffer> {
    /// Given a function with binary output, generate a searchable image
    ///
    /// If the given function returns `true` the matching pixel will be 'black'.
    pub fn prepare_from_bitmap<F>(w: usize, h: usize, mut fill: F) -> Self
    where
        F: FnMut(usize, usize) -> bool,
    {
        let capacity = w.checked_mul(h).expect("Image dimensions caused overflow");
        // Written in place rather than pushed (a length update per pixel),
        // and only black and white are written, so `without_preparation`'s
        // check of every pixel is not needed.
        let mut pixels = vec![u8::from(PixelColor::White); capacity].into_boxed_slice();
        let black = u8::from(PixelColor::Black);
        if w > 0 {
            for (y, row) in pixels.chunks_exact_mut(w).enumerate() {
                for (x, p) in row.iter_mut().enumerate() {
                    if fill(x, y) {
                        *p = black;
                    }
                }
            }
        }
        PreparedImage::with_buffer(BasicImageBuffer { w, h, pixels })
    }

    /// Prepare a greyscale image given as rows of `w` bytes (0 black, 255
    /// white), taking over the buffer: [`prepare_from_greyscale`](Self::prepare_from_greyscale)
    /// builds its copy a pixel at a time through a closure, which cost a
    /// fifth of the preparation. A buffer of the wrong length is cut, or
    /// padded with white. (An RxEdge addition.)
    pub fn prepare_from_luma(w: usize, h: usize, mut pixels: Vec<u8>) -> Self {
        let len = w.checked_mul(h).expect("Image dimensions caused overflow");
        pixels.resize(len, 255);
        let pixels = pixels.into_boxed_slice();
        PreparedImage::prepare(BasicImageBuffer { w, h, pixels })
    }

    /// Given a byte valued function, generate a searchable image
    ///
    /// The values returned by the function are interpreted as luminance. i.e. a
    /// value of 0 is black, 255 is white.
    pub fn prepare_from_greyscale<F>(w: usize, h: usize, mut fill: F) -> Self
    where
        F: FnMut(usize, usize) -> u8,
    {
        let capacity = w.checked_mul(h).expect("Image dimensions caused overflow");
        let mut data = Vec::with_capacity(capacity);
        for y in 0..h {
            for x in 0..w {
                data.push(fill(x, y));
            }
        }
        let pixels = data.into_boxed_slice();
        let buffer = BasicImageBuffer { w, h, pixels };
        PreparedImage::prepare(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img_from_array(array: [[u8; 3]; 3]) -> PreparedImage<BasicImageBuffer> {
        let mut pixels = Vec::new();
        for col in array.iter() {
            for item in col.iter() {
                if *item == 0 {
                    pixels.push(0)
                } else {
                    pixels.push(1)
                }
            }
        }
        let buffer = BasicImageBuffer {
            w: 3,
            h: 3,
            pixels: pixels.into_boxed_slice(),
        };

        PreparedImage {
            buffer,
            cache: LruCache::new(NonZeroUsize::new(251).unwrap()),
        }
    }

    /// 0.11.0's thresholding, as published, for comparison.
    fn prepare_as_published(w: usize, h: usize, px: &[u8]) -> Vec<u8> {
        let mut out = px.to_vec();
        let mut row_average = vec![0; w];
        let (mut avg_v, mut avg_u) = (0usize, 0usize);
        let threshold_s = cmp::max(w / 8, 1);
        for y in 0..h {
            row_average.fill(0);
            for x in 0..w {
                let (v, u) = if y % 2 == 0 {
                    (w - 1 - x, x)
                } else {
                    (x, w - 1 - x)
                };
                avg_v = avg_v * (threshold_s - 1) / threshold_s + px[y * w + v] as usize;
                avg_u = avg_u * (threshold_s - 1) / threshold_s + px[y * w + u] as usize;
                row_average[v] += avg_v;
                row_average[u] += avg_u;
            }
            for x in 0..w {
                let black =
                    (px[y * w + x] as usize) < row_average[x] * (100 - 5) / (200 * threshold_s);
                out[y * w + x] = if black { 1 } else { 0 };
            }
        }
        out
    }

    #[test]
    fn prepare_thresholds_as_the_published_crate_did() {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for (w, h) in [(1, 1), (7, 5), (15, 9), (64, 48), (241, 37), (640, 12)] {
            // Noise over a gradient, and flat runs, so both the averages and
            // the comparisons are exercised near their edges.
            let px: Vec<u8> = (0..w * h)
                .map(|i| {
                    let r = next();
                    if r % 7 == 0 {
                        255
                    } else {
                        ((i % w) * 255 / w.max(1)) as u8 ^ (r >> 28) as u8
                    }
                })
                .collect();
            let ours = PreparedImage::prepare_from_luma(w, h, px.clone());
            let want = prepare_as_published(w, h, &px);
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(
                        ours.buffer.get_pixel(x, y),
                        want[y * w + x],
                        "{w}x{h} at {x},{y}"
                    );
                }
            }
        }
    }

    #[test]
    fn exact_div_matches_division() {
        for d in [1usize, 2, 3, 7, 30, 45, 80, 159, 160, 1000, 65537] {
            let q = ExactDiv::new(d);
            for n in (0..200_000usize).chain([(1 << 32) - 1, 1 << 32, usize::MAX / 3]) {
                assert_eq!(q.div(n), n / d, "{n} / {d}");
            }
        }
    }

    #[test]
    fn test_flood_fill_full() {
        let mut test_full = img_from_array([[1, 1, 1], [1, 1, 1], [1, 1, 1]]);

        test_full.flood_fill(0, 0, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                assert_eq!(test_full.get_pixel_at(x, y), 2);
            }
        }
    }

    #[test]
    fn test_flood_fill_single() {
        let mut test_single = img_from_array([[1, 0, 1], [0, 1, 0], [1, 0, 1]]);

        test_single.flood_fill(1, 1, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && y == 1 {
                    assert_eq!(test_single.get_pixel_at(x, y), 2);
                } else {
                    let col = if (x + y) % 2 == 0 { 1 } else { 0 };
                    assert_eq!(test_single.get_pixel_at(x, y), col);
                }
            }
        }
    }

    #[test]
    fn test_flood_fill_ring() {
        let mut test_ring = img_from_array([[1, 1, 1], [1, 0, 1], [1, 1, 1]]);

        test_ring.flood_fill(0, 0, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && y == 1 {
                    assert_eq!(test_ring.get_pixel_at(x, y), 0);
                } else {
                    assert_eq!(test_ring.get_pixel_at(x, y), 2);
                }
            }
        }
    }

    #[test]
    fn test_flood_fill_u() {
        let mut test_u = img_from_array([[1, 0, 1], [1, 0, 1], [1, 1, 1]]);

        test_u.flood_fill(0, 0, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && (y == 0 || y == 1) {
                    assert_eq!(test_u.get_pixel_at(x, y), 0);
                } else {
                    assert_eq!(test_u.get_pixel_at(x, y), 2);
                }
            }
        }
    }

    #[test]
    fn test_flood_fill_empty() {
        let mut test_empty = img_from_array([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);

        test_empty.flood_fill(1, 1, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                assert_eq!(test_empty.get_pixel_at(x, y), 0)
            }
        }
    }

    #[test]
    fn test_get_region() {
        let mut test_u = img_from_array([[1, 0, 1], [1, 0, 1], [1, 1, 1]]);

        let reg = test_u.get_region((0, 0));
        let (color, src_x, src_y, pixel_count) = match reg {
            ColoredRegion::Unclaimed {
                color,
                src_x,
                src_y,
                pixel_count,
            } => (color, src_x, src_y, pixel_count),
            x => panic!("Expected Region::Unclaimed, got {:?}", x),
        };
        assert_eq!(0, src_x);
        assert_eq!(0, src_y);
        assert_eq!(7, pixel_count);
        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && (y == 0 || y == 1) {
                    assert_eq!(PixelColor::White, test_u.get_pixel_at(x, y));
                } else {
                    assert_eq!(color, test_u.get_pixel_at(x, y));
                }
            }
        }
    }
}
