//! PDF uploads, through poppler's command-line tools in a child process with
//! a time limit: a PDF is a program of sorts, and a hostile one (a
//! decompression bomb, a page a kilometre wide) must cost a refusal, never
//! the hub. The text layer is taken when there is one (`pdftotext -bbox`);
//! otherwise pages are rendered to a bounded size (`pdftoppm -scale-to`).

use super::layout::{BBox, Word};
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a PDF was refused.
#[derive(Debug, Error)]
pub enum PdfError {
    /// poppler-utils is missing.
    #[error("PDF support needs poppler-utils (pdftotext, pdftoppm): {0}")]
    Tools(String),
    /// It took too long (a bomb, or a very complex file).
    #[error("the PDF took longer than {0} s to read and was stopped")]
    Timeout(u32),
    /// Its output was larger than any prescription's.
    #[error("the PDF produced more than {0} MB and was stopped")]
    Output(u64),
    /// The tools refused it.
    #[error("the PDF could not be read: {0}")]
    Broken(String),
}

/// Limits on reading one PDF.
#[derive(Debug, Clone, Copy)]
pub struct PdfLimits {
    /// Pages read at most.
    pub max_pages: u32,
    /// Wall-clock seconds per tool run.
    pub timeout_secs: u32,
    /// Longest side of a rendered page, in pixels.
    pub render_side: u32,
}

/// Whether the bytes are a PDF.
pub fn is_pdf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"%PDF-")
}

const MAX_OUTPUT: u64 = 64 << 20;

/// Runs a tool with a time limit and an output cap; returns its stdout.
fn run(cmd: &mut Command, limits: PdfLimits) -> Result<Vec<u8>, PdfError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PdfError::Tools(e.to_string()))?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| PdfError::Tools("no stdout".into()))?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = (&mut out).take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        r.map(|_| buf)
    });
    let deadline = Instant::now() + Duration::from_secs(u64::from(limits.timeout_secs));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PdfError::Timeout(limits.timeout_secs));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(PdfError::Tools(e.to_string())),
        }
    };
    let buf = reader
        .join()
        .map_err(|_| PdfError::Tools("output reader panicked".into()))?
        .map_err(|e| PdfError::Tools(e.to_string()))?;
    if buf.len() as u64 > MAX_OUTPUT {
        return Err(PdfError::Output(MAX_OUTPUT >> 20));
    }
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let first = err.lines().next().unwrap_or("unknown error").to_string();
        return Err(PdfError::Broken(first));
    }
    Ok(buf)
}

/// The text layer's words, in pixels at 300 dpi, pages stacked top to
/// bottom. Empty when the PDF has no text layer (a scan).
pub fn text_words(path: &Path, limits: PdfLimits) -> Result<Vec<Word>, PdfError> {
    let out = run(
        Command::new("pdftotext")
            .arg("-bbox")
            .arg("-f")
            .arg("1")
            .arg("-l")
            .arg(limits.max_pages.to_string())
            .arg(path)
            .arg("-"),
        limits,
    )?;
    Ok(parse_bbox_html(&String::from_utf8_lossy(&out)))
}

/// Parses `pdftotext -bbox` output: `<page width= height=>` and
/// `<word xMin= yMin= xMax= yMax=>text</word>` in points.
pub fn parse_bbox_html(html: &str) -> Vec<Word> {
    const PX: f64 = 300.0 / 72.0;
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let k = format!("{name}=\"");
        let i = tag.find(&k)? + k.len();
        let j = tag[i..].find('"')? + i;
        tag[i..j].parse().ok()
    };
    let mut words = Vec::new();
    let mut page_top = 0.0;
    let mut page_h = 0.0;
    for part in html.split('<').skip(1) {
        if part.starts_with("page ") {
            page_top += page_h;
            page_h = attr(part, "height").unwrap_or(842.0);
        } else if part.starts_with("word ") {
            let Some(gt) = part.find('>') else { continue };
            let tag = &part[..gt];
            let text = unescape(&part[gt + 1..]);
            let (Some(x0), Some(y0), Some(x1), Some(y1)) = (
                attr(tag, "xMin"),
                attr(tag, "yMin"),
                attr(tag, "xMax"),
                attr(tag, "yMax"),
            ) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let c = |v: f64| (v * PX).round().max(0.0) as u32;
            words.push(Word {
                text: text.trim().to_string(),
                conf: 100.0,
                bbox: BBox {
                    x: c(x0),
                    y: c(y0 + page_top),
                    w: c(x1 - x0).max(1),
                    h: c(y1 - y0).max(1),
                },
            });
        }
    }
    words
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Renders the first pages to greyscale PNGs, longest side bounded.
pub fn render(path: &Path, dir: &Path, limits: PdfLimits) -> Result<Vec<Vec<u8>>, PdfError> {
    let prefix = dir.join("page");
    run(
        Command::new("pdftoppm")
            .arg("-gray")
            .arg("-png")
            .arg("-f")
            .arg("1")
            .arg("-l")
            .arg(limits.max_pages.to_string())
            .arg("-scale-to")
            .arg(limits.render_side.to_string())
            .arg(path)
            .arg(&prefix),
        limits,
    )?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| PdfError::Broken(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    pages.sort();
    pages
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| PdfError::Broken(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_html() {
        let html = r#"<doc><page width="595.0" height="842.0">
<word xMin="72.0" yMin="100.0" xMax="120.0" yMax="112.0">Metformin</word>
<word xMin="125.0" yMin="100.0" xMax="150.0" yMax="112.0">500&amp;</word>
</page><page width="595.0" height="842.0">
<word xMin="72.0" yMin="10.0" xMax="100.0" yMax="22.0">OP</word></page></doc>"#;
        let w = parse_bbox_html(html);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].text, "Metformin");
        assert_eq!(w[0].bbox.x, 300);
        assert_eq!(w[1].text, "500&");
        // The second page lies below the first.
        assert!(w[2].bbox.y > w[0].bbox.y);
    }
}
