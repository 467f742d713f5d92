//! Words into lines and cells, by geometry alone.
//!
//! Tesseract's own segmentation splits tables and letterheads in ways that
//! change from photo to photo, so the extractor rebuilds the page itself:
//! words whose vertical centres agree form a line, a wide gap inside a line
//! separates two cells of a row, and left-aligned segments stacked closely
//! form one multi-line cell (a medication name over its strength, say).

use serde::Serialize;

/// A box on the page image, in pixels of the image the pipeline was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct BBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl BBox {
    /// The smallest box holding both.
    pub fn union(self, o: BBox) -> BBox {
        if self.w == 0 && self.h == 0 {
            return o;
        }
        if o.w == 0 && o.h == 0 {
            return self;
        }
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        let r = (self.x + self.w).max(o.x + o.w);
        let b = (self.y + self.h).max(o.y + o.h);
        BBox {
            x,
            y,
            w: r - x,
            h: b - y,
        }
    }
    /// The box scaled by `f` (back to the original image's pixels).
    pub fn scaled(self, f: f64) -> BBox {
        let s = |v: u32| (f64::from(v) * f).round().max(0.0) as u32;
        BBox {
            x: s(self.x),
            y: s(self.y),
            w: s(self.w),
            h: s(self.h),
        }
    }
    fn cx(&self) -> f64 {
        f64::from(self.x) + f64::from(self.w) / 2.0
    }
    fn cy(&self) -> f64 {
        f64::from(self.y) + f64::from(self.h) / 2.0
    }
    fn right(&self) -> u32 {
        self.x + self.w
    }
    fn bottom(&self) -> u32 {
        self.y + self.h
    }
}

/// One recognised word.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    /// The text as recognised.
    pub text: String,
    /// The engine's confidence, 0–100.
    pub conf: f32,
    /// Where it is.
    pub bbox: BBox,
}

/// Words side by side with no wide gap: one cell of a table row, or a whole
/// line of running text.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The words, left to right.
    pub words: Vec<Word>,
    /// Their union.
    pub bbox: BBox,
    /// The line (row) index this segment belongs to.
    pub line: usize,
}

impl Segment {
    /// The words joined by single spaces.
    pub fn text(&self) -> String {
        join(&self.words)
    }
    /// The mean word confidence, 0–1.
    pub fn confidence(&self) -> f32 {
        mean_conf(&self.words)
    }
}

/// Words joined by single spaces.
pub fn join(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&w.text);
    }
    s
}

/// The mean confidence of some words as 0–1 (0 for none).
pub fn mean_conf(words: &[Word]) -> f32 {
    if words.is_empty() {
        return 0.0;
    }
    words.iter().map(|w| w.conf.clamp(0.0, 100.0)).sum::<f32>() / words.len() as f32 / 100.0
}

/// The union of the words' boxes.
pub fn bbox_of(words: &[Word]) -> BBox {
    words.iter().fold(BBox::default(), |b, w| b.union(w.bbox))
}

/// A page rebuilt from its words.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Lines top to bottom, each a list of segments left to right.
    pub lines: Vec<Vec<Segment>>,
    /// Cells: indices `(line, segment)` stacked into one multi-line block.
    pub cells: Vec<Vec<(usize, usize)>>,
    /// The median word height, the page's unit of distance.
    pub unit: f64,
}

impl Layout {
    /// Builds lines, segments and cells from words in any order.
    pub fn build(words: &[Word]) -> Layout {
        let mut words: Vec<Word> = words
            .iter()
            .filter(|w| !w.text.trim().is_empty() && w.bbox.h > 0)
            .cloned()
            .collect();
        let unit = median_height(&words).max(4.0);
        words.sort_by(|a, b| a.bbox.cy().total_cmp(&b.bbox.cy()));
        // A line keeps the running centre of its words; a word joins the
        // nearest line within half a unit, or opens a new one.
        let mut rows: Vec<(f64, Vec<Word>)> = Vec::new();
        for w in words {
            let cy = w.bbox.cy();
            let near = rows
                .iter_mut()
                .rev()
                .take(3)
                .filter(|(c, _)| (cy - *c).abs() < unit * 0.55)
                .min_by(|a, b| (cy - a.0).abs().total_cmp(&(cy - b.0).abs()));
            match near {
                Some((c, ws)) => {
                    ws.push(w);
                    *c = ws.iter().map(|w| w.bbox.cy()).sum::<f64>() / ws.len() as f64;
                }
                None => rows.push((cy, vec![w])),
            }
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut lines = Vec::new();
        for (i, (_, mut ws)) in rows.into_iter().enumerate() {
            ws.sort_by_key(|w| w.bbox.x);
            let mut segs: Vec<Segment> = Vec::new();
            for w in ws {
                let gap_ok = segs.last().is_some_and(|s: &Segment| {
                    f64::from(w.bbox.x) - f64::from(s.bbox.right()) < unit * 1.3
                });
                match segs.last_mut() {
                    Some(s) if gap_ok => {
                        s.bbox = s.bbox.union(w.bbox);
                        s.words.push(w);
                    }
                    _ => segs.push(Segment {
                        bbox: w.bbox,
                        words: vec![w],
                        line: i,
                    }),
                }
            }
            lines.push(segs);
        }
        let cells = stack_cells(&lines, unit);
        Layout { lines, cells, unit }
    }

    /// The segment at `(line, index)`.
    pub fn seg(&self, at: (usize, usize)) -> Option<&Segment> {
        self.lines.get(at.0).and_then(|l| l.get(at.1))
    }

    /// Every segment in reading order.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.lines.iter().flatten()
    }

    /// The page's text: lines top to bottom, segments joined by a space.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.iter().map(Segment::text).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The words of a line band `[top, bottom)` whose centre lies inside
    /// the horizontal range `[left, right)`.
    pub fn words_in(&self, top: f64, bottom: f64, left: f64, right: f64) -> Vec<&Word> {
        self.segments()
            .flat_map(|s| s.words.iter())
            .filter(|w| {
                let (cx, cy) = (w.bbox.cx(), w.bbox.cy());
                cy >= top && cy < bottom && cx >= left && cx < right
            })
            .collect()
    }
}

fn median_height(words: &[Word]) -> f64 {
    let mut h: Vec<u32> = words.iter().map(|w| w.bbox.h).collect();
    if h.is_empty() {
        return 0.0;
    }
    h.sort_unstable();
    f64::from(h[h.len() / 2])
}

/// Stacks segments into cells: a segment continues the cell above it when
/// their left edges line up and the vertical gap is under a line's height.
fn stack_cells(lines: &[Vec<Segment>], unit: f64) -> Vec<Vec<(usize, usize)>> {
    let mut cells: Vec<Vec<(usize, usize)>> = Vec::new();
    // For each open cell: its last segment's box.
    let mut open: Vec<(usize, BBox)> = Vec::new();
    for (li, segs) in lines.iter().enumerate() {
        let top = segs.iter().map(|s| s.bbox.y).min().unwrap_or(0);
        // A cell not continued on an intervening row (a taller neighbour
        // cell's row, say) stays open until the gap grows too large.
        open.retain(|(_, b)| f64::from(b.bottom()) + unit * 1.0 > f64::from(top));
        for (si, s) in segs.iter().enumerate() {
            let found = open.iter().position(|(_, b)| {
                let dx = (f64::from(b.x) - f64::from(s.bbox.x)).abs();
                let gap = f64::from(s.bbox.y) - f64::from(b.bottom());
                dx < unit * 1.2 && gap < unit * 1.0 && gap > -unit * 0.5
            });
            let ci = match found {
                Some(p) => {
                    let (ci, _) = open.remove(p);
                    cells[ci].push((li, si));
                    ci
                }
                None => {
                    cells.push(vec![(li, si)]);
                    cells.len() - 1
                }
            };
            open.push((ci, s.bbox));
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn w(text: &str, x: u32, y: u32) -> Word {
        let wd = 14 * text.chars().count() as u32;
        Word {
            text: text.into(),
            conf: 90.0,
            bbox: BBox { x, y, w: wd, h: 20 },
        }
    }

    #[test]
    fn lines_segments_and_cells() {
        let words = vec![
            w("Tabl", 100, 132),
            w("ANTIBIOTIKUM", 100, 100),
            w("800/160mg", 170, 131),
            w("1", 600, 128),
            w("Stk", 800, 129),
            w("Metformin", 100, 300),
        ];
        let l = Layout::build(&words);
        assert_eq!(l.lines.len(), 3, "{:?}", l.text());
        assert_eq!(l.text(), "ANTIBIOTIKUM\nTabl 800/160mg 1 Stk\nMetformin");
        // The name and its strength line are one cell; the dose column is another.
        let first = &l.cells[0];
        let texts: Vec<String> = first
            .iter()
            .filter_map(|at| l.seg(*at))
            .map(Segment::text)
            .collect();
        assert_eq!(texts, ["ANTIBIOTIKUM", "Tabl 800/160mg"]);
        assert!(l.cells.len() >= 3);
    }

    #[test]
    fn wide_gap_splits_a_row() {
        let l = Layout::build(&[
            w("Morgen", 100, 10),
            w("Mittag", 400, 11),
            w("Abend", 200, 50),
        ]);
        assert_eq!(l.lines[0].len(), 2);
        assert_eq!(l.lines[1].len(), 1);
    }

    #[test]
    fn empty_page() {
        let l = Layout::build(&[]);
        assert!(l.lines.is_empty());
        assert_eq!(l.text(), "");
    }
}
