//! OCR: paper prescriptions to structured, reviewable drafts.
//!
//! The pipeline is decode (with limits) → preprocess → engine → extract.
//! Only the engine touches Tesseract; the extractor is pure and works on
//! words with boxes, so each rule is tested without images.

pub mod cli;
pub mod edits;
pub mod engine;
pub mod extract;
pub mod jobs;
pub mod layout;
pub mod pdf;
pub mod preprocess;
pub mod vocab;
pub mod web;

use engine::{Engine, EngineError};
use extract::Draft;
use layout::Word;
use preprocess::{ImageError, Limits, Steps};
use serde::Serialize;
use std::time::Instant;
use thiserror::Error;
use vocab::Lookup;

/// Why a page could not be read.
#[derive(Debug, Error)]
pub enum OcrError {
    /// The image was refused.
    #[error("{0}")]
    Image(#[from] ImageError),
    /// The PDF was refused.
    #[error("{0}")]
    Pdf(#[from] pdf::PdfError),
    /// The engine failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// Scratch space for a PDF could not be made.
    #[error("scratch space: {0}")]
    Io(#[from] std::io::Error),
}

impl OcrError {
    /// Whether trying again could help (an engine failure might be
    /// transient; a refused file never changes).
    pub fn retryable(&self) -> bool {
        matches!(self, OcrError::Engine(_) | OcrError::Io(_))
    }
}

/// Time spent in each stage, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Decoding and orientation (or reading a PDF).
    pub decode_ms: f64,
    /// Greyscale, deskew, scaling.
    pub prepare_ms: f64,
    /// The engine.
    pub ocr_ms: f64,
    /// Extraction.
    pub extract_ms: f64,
}

/// The result of reading a document.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    /// The draft.
    #[serde(flatten)]
    pub draft: Draft,
    /// `image`, `pdf_text` (its text layer) or `pdf_scan` (rendered pages).
    pub source: &'static str,
    /// Pages read.
    pub pages: u32,
    /// Width and height of the (first) page image, for drawing the boxes.
    pub size: (u32, u32),
    /// The skew that was corrected, in degrees.
    pub skew_degrees: f64,
    /// Stage times.
    pub timings: Timings,
    /// Total time.
    pub ms: f64,
    /// The recognised words with their boxes (original image pixels).
    pub words: Vec<Word>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Decode → preprocess → engine → extract, with one engine kept warm.
pub struct Pipeline {
    engine: Box<dyn Engine>,
    steps: Steps,
    limits: Limits,
    pdf: pdf::PdfLimits,
}

impl Pipeline {
    /// A pipeline around an engine.
    pub fn new(engine: Box<dyn Engine>, steps: Steps, limits: Limits, pdf: pdf::PdfLimits) -> Self {
        Pipeline {
            engine,
            steps,
            limits,
            pdf,
        }
    }

    /// A pipeline from the hub's `[ocr]` config (loads the engine).
    pub fn from_config(
        c: &crate::config::Ocr,
        ingest_max_bytes: usize,
    ) -> Result<Self, EngineError> {
        let engine: Box<dyn Engine> = if c.engine == "vision" {
            Box::new(engine::Vision::new(
                &c.vision_url,
                &c.vision_key,
                &c.vision_model,
            ))
        } else {
            let data = (!c.tessdata.is_empty()).then_some(c.tessdata.as_str());
            Box::new(engine::Tesseract::new(data, &c.languages, c.segmentation)?)
        };
        Ok(Pipeline::new(
            engine,
            c.preprocess,
            Limits {
                max_bytes: ingest_max_bytes,
                max_side: c.max_side,
            },
            pdf::PdfLimits {
                max_pages: c.max_pdf_pages,
                timeout_secs: c.pdf_timeout_secs,
                render_side: 3300,
            },
        ))
    }

    /// The engine's name.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Reads a PNG, JPEG or PDF.
    pub fn read(&mut self, bytes: &[u8], vocab: &dyn Lookup) -> Result<Reading, OcrError> {
        self.read_with(bytes, vocab, &mut |_| {})
    }

    /// As [`Pipeline::read`], telling `progress` each stage as it starts.
    pub fn read_with(
        &mut self,
        bytes: &[u8],
        vocab: &dyn Lookup,
        progress: &mut dyn FnMut(&'static str),
    ) -> Result<Reading, OcrError> {
        let start = Instant::now();
        progress("decoding");
        if bytes.len() > self.limits.max_bytes {
            return Err(ImageError::TooLarge {
                size: bytes.len(),
                max: self.limits.max_bytes,
            }
            .into());
        }
        let mut t = Timings::default();
        let (words, source, pages, size, skew) = if pdf::is_pdf(bytes) {
            self.read_pdf(bytes, vocab, &mut t, progress)?
        } else {
            let t0 = Instant::now();
            let img = preprocess::decode(bytes, self.limits)?;
            t.decode_ms = ms(t0);
            let (words, skew) = self.read_image(&img, vocab, &mut t, progress)?;
            (words, "image", 1, (img.width(), img.height()), skew)
        };
        progress("extracting");
        let t0 = Instant::now();
        let draft = extract::extract(&words, vocab);
        t.extract_ms = ms(t0);
        Ok(Reading {
            draft,
            source,
            pages,
            size,
            skew_degrees: skew,
            timings: t,
            ms: ms(start),
            words,
        })
    }

    fn read_image(
        &mut self,
        img: &image::DynamicImage,
        vocab: &dyn Lookup,
        t: &mut Timings,
        progress: &mut dyn FnMut(&'static str),
    ) -> Result<(Vec<Word>, f64), OcrError> {
        progress("straightening and scaling");
        let t0 = Instant::now();
        let prep = preprocess::prepare(img, self.steps);
        t.prepare_ms += ms(t0);
        progress("recognising text");
        let t0 = Instant::now();
        let mut words = self.engine.recognize(&prep.image, prep.ppi)?;
        // A second look at table dose cells, which page segmentation drops.
        let cells = extract::dose_cells(&words, vocab);
        if !cells.is_empty() {
            progress("reading the dose columns");
        }
        for cell in cells {
            let Some(crop) = preprocess::cell(&prep.image, cell) else {
                continue;
            };
            for mut w in self.engine.recognize_line(&crop.image, prep.ppi)? {
                w.bbox.x = (w.bbox.x + cell.x).saturating_sub(crop.pad);
                w.bbox.y = (w.bbox.y + cell.y).saturating_sub(crop.pad);
                words.push(w);
            }
        }
        t.ocr_ms += ms(t0);
        // Boxes go back to the original image's pixels, for the review screen.
        let words = words
            .into_iter()
            .map(|mut w| {
                w.bbox = w.bbox.scaled(prep.scale_back);
                w.bbox.x += prep.offset.0;
                w.bbox.y += prep.offset.1;
                w
            })
            .collect();
        Ok((words, prep.skew_degrees))
    }

    #[allow(clippy::type_complexity)]
    fn read_pdf(
        &mut self,
        bytes: &[u8],
        vocab: &dyn Lookup,
        t: &mut Timings,
        progress: &mut dyn FnMut(&'static str),
    ) -> Result<(Vec<Word>, &'static str, u32, (u32, u32), f64), OcrError> {
        let t0 = Instant::now();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("in.pdf");
        std::fs::write(&path, bytes)?;
        let words = pdf::text_words(&path, self.pdf)?;
        if words.len() >= 5 {
            t.decode_ms = ms(t0);
            let w = words.iter().map(|w| w.bbox.x + w.bbox.w).max().unwrap_or(0);
            let h = words.iter().map(|w| w.bbox.y + w.bbox.h).max().unwrap_or(0);
            return Ok((words, "pdf_text", 1, (w, h), 0.0));
        }
        progress("rendering PDF pages");
        let pages = pdf::render(&path, dir.path(), self.pdf)?;
        t.decode_ms = ms(t0);
        let mut all = Vec::new();
        let mut top = 0u32;
        let mut size = (0, 0);
        for png in &pages {
            let img = preprocess::decode(png, self.limits)?;
            let (words, _) = self.read_image(&img, vocab, t, progress)?;
            all.extend(words.into_iter().map(|mut w| {
                w.bbox.y += top;
                w
            }));
            if size == (0, 0) {
                size = (img.width(), img.height());
            }
            top += img.height();
        }
        Ok((all, "pdf_scan", pages.len() as u32, size, 0.0))
    }
}
