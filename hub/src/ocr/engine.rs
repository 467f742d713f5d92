//! OCR engines behind one trait: Tesseract in-process (the default) and an
//! OpenAI-compatible vision endpoint (optional, off by default).

use super::layout::{BBox, Word};
use image::GrayImage;
use thiserror::Error;

/// Why recognition failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The engine could not start (missing language data, say).
    #[error("the OCR engine could not start: {0}")]
    Init(String),
    /// The engine failed on this page.
    #[error("the OCR engine failed on this page: {0}")]
    Recognise(String),
}

/// Turns a page image into words with boxes and confidences.
pub trait Engine: Send {
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
    /// Recognises a greyscale page scanned at about `ppi`.
    fn recognize(&mut self, img: &GrayImage, ppi: u32) -> Result<Vec<Word>, EngineError>;
    /// Recognises a small image holding one line (a table cell).
    fn recognize_line(&mut self, img: &GrayImage, ppi: u32) -> Result<Vec<Word>, EngineError> {
        self.recognize(img, ppi)
    }
}

/// How Tesseract segments the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segmentation {
    /// Tesseract's full layout analysis (`--psm 3`).
    Auto,
    /// Find as much text as possible in no particular order (`--psm 11`).
    /// The extractor rebuilds the layout itself, and tables with pictures
    /// in them (the eMediplan's pill photos) read better this way.
    Sparse,
}

/// Tesseract 5 through its C API. The model is loaded once and reused for
/// every page, which is most of the cost the CLI pays per call.
pub struct Tesseract {
    api: Option<tesseract::Tesseract>,
    datapath: Option<String>,
    languages: String,
    mode: Segmentation,
}

impl Tesseract {
    /// Loads the language models, e.g. `deu+eng`.
    pub fn new(
        datapath: Option<&str>,
        languages: &str,
        mode: Segmentation,
    ) -> Result<Self, EngineError> {
        let api = Self::init(datapath, languages)?;
        Ok(Tesseract {
            api: Some(api),
            datapath: datapath.map(str::to_string),
            languages: languages.to_string(),
            mode,
        })
    }

    fn init(datapath: Option<&str>, languages: &str) -> Result<tesseract::Tesseract, EngineError> {
        let api = tesseract::Tesseract::new_with_oem(
            datapath,
            Some(languages),
            tesseract::OcrEngineMode::LstmOnly,
        )
        .map_err(|e| {
            EngineError::Init(format!(
                "{e} (languages {languages}; are the tesseract-ocr-* data packages installed?)"
            ))
        })?;
        // Tesseract prints its diagnostics ("Line cannot be recognized")
        // on stderr, which is the hub's log; they say nothing to a reader.
        api.set_variable("debug_file", "/dev/null")
            .map_err(|e| EngineError::Init(e.to_string()))
    }
}

/// Parses Tesseract's TSV output into words (level 5 rows).
pub fn parse_tsv(tsv: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for line in tsv.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 12 || f[0] != "5" {
            continue;
        }
        let num = |i: usize| f[i].trim().parse::<i64>().ok();
        let (Some(x), Some(y), Some(w), Some(h)) = (num(6), num(7), num(8), num(9)) else {
            continue;
        };
        let conf: f32 = f[10].trim().parse().unwrap_or(0.0);
        let text = f[11..].join("\t").trim().to_string();
        if text.is_empty() || conf < 0.0 {
            continue;
        }
        let c = |v: i64| u32::try_from(v.max(0)).unwrap_or(0);
        out.push(Word {
            text,
            conf,
            bbox: BBox {
                x: c(x),
                y: c(y),
                w: c(w),
                h: c(h),
            },
        });
    }
    out
}

impl Engine for Tesseract {
    fn name(&self) -> &'static str {
        "tesseract"
    }

    fn recognize(&mut self, img: &GrayImage, ppi: u32) -> Result<Vec<Word>, EngineError> {
        let mode = match self.mode {
            Segmentation::Auto => tesseract::PageSegMode::PsmAuto,
            Segmentation::Sparse => tesseract::PageSegMode::PsmSparseText,
        };
        self.run(img, ppi, mode)
    }

    fn recognize_line(&mut self, img: &GrayImage, ppi: u32) -> Result<Vec<Word>, EngineError> {
        self.run(img, ppi, tesseract::PageSegMode::PsmSingleLine)
    }
}

impl Tesseract {
    fn run(
        &mut self,
        img: &GrayImage,
        ppi: u32,
        mode: tesseract::PageSegMode,
    ) -> Result<Vec<Word>, EngineError> {
        let api = match self.api.take() {
            Some(a) => a,
            None => Self::init(self.datapath.as_deref(), &self.languages)?,
        };
        let (w, h) = img.dimensions();
        let (wi, hi) = (
            i32::try_from(w).map_err(|_| EngineError::Recognise("image too wide".into()))?,
            i32::try_from(h).map_err(|_| EngineError::Recognise("image too tall".into()))?,
        );
        // The C API's calls consume the handle; a failure drops it, and the
        // next page loads a fresh one.
        let mut api = api
            .set_frame(img.as_raw(), wi, hi, 1, wi)
            .map_err(|e| EngineError::Recognise(e.to_string()))?
            .set_source_resolution(i32::try_from(ppi).unwrap_or(300));
        api.set_page_seg_mode(mode);
        let mut api = api
            .recognize()
            .map_err(|e| EngineError::Recognise(e.to_string()))?;
        let tsv = api
            .get_tsv_text(0)
            .map_err(|e| EngineError::Recognise(e.to_string()))?;
        self.api = Some(api);
        Ok(parse_tsv(&tsv))
    }
}

/// An OpenAI-compatible vision model (`POST {url}/chat/completions`),
/// asked to return the page's lines with boxes as JSON. Off by default:
/// it sends patient data to whoever runs the endpoint.
pub struct Vision {
    url: String,
    key: String,
    model: String,
    client: reqwest::Client,
}

/// What the model is asked for.
pub const VISION_PROMPT: &str = "Transcribe every printed or handwritten line of this prescription. \
Answer with JSON only: {\"lines\":[{\"text\":\"...\",\"box\":[x,y,width,height],\"confidence\":0.0-1.0}]} \
with boxes in pixels of the image, lines top to bottom.";

impl Vision {
    /// A client for the endpoint.
    pub fn new(url: &str, key: &str, model: &str) -> Self {
        Vision {
            url: url.trim_end_matches('/').to_string(),
            key: key.to_string(),
            model: model.to_string(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(&self, png: Vec<u8>) -> Result<Vec<Word>, EngineError> {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let body = serde_json::json!({
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": VISION_PROMPT},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}}
            ]}]
        });
        let mut req = self
            .client
            .post(format!("{}/chat/completions", self.url))
            .json(&body);
        if !self.key.is_empty() {
            req = req.bearer_auth(&self.key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| EngineError::Recognise(format!("vision endpoint: {e}")))?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.map_err(|e| {
            EngineError::Recognise(format!(
                "vision endpoint answered {status} without JSON: {e}"
            ))
        })?;
        if !status.is_success() {
            return Err(EngineError::Recognise(format!(
                "vision endpoint answered {status}: {v}"
            )));
        }
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| EngineError::Recognise("vision answer has no message content".into()))?;
        vision_words(content)
    }
}

/// The model's `{"lines":[…]}` answer as words: each line's box is shared
/// among its words by their length.
pub fn vision_words(content: &str) -> Result<Vec<Word>, EngineError> {
    #[derive(serde::Deserialize)]
    struct Line {
        text: String,
        #[serde(rename = "box", default)]
        bbox: Option<[f64; 4]>,
        #[serde(default)]
        confidence: Option<f32>,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        lines: Vec<Line>,
    }
    // Models wrap JSON in a code fence now and then.
    let trimmed = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```");
    let a: Answer = serde_json::from_str(trimmed).map_err(|e| {
        EngineError::Recognise(format!("vision answer is not the JSON asked for: {e}"))
    })?;
    let mut out = Vec::new();
    for (i, l) in a.lines.iter().enumerate() {
        let [x, y, w, h] = l.bbox.unwrap_or([
            0.0,
            i as f64 * 40.0,
            40.0 * l.text.chars().count() as f64,
            30.0,
        ]);
        let conf = l.confidence.unwrap_or(0.8).clamp(0.0, 1.0) * 100.0;
        let words: Vec<&str> = l.text.split_whitespace().collect();
        let total: usize = words
            .iter()
            .map(|w| w.chars().count() + 1)
            .sum::<usize>()
            .max(1);
        let mut cx = x;
        for t in words {
            let ww = w * (t.chars().count() + 1) as f64 / total as f64;
            let c = |v: f64| v.round().max(0.0) as u32;
            out.push(Word {
                text: t.to_string(),
                conf,
                bbox: BBox {
                    x: c(cx),
                    y: c(y),
                    w: c(ww * 0.9).max(1),
                    h: c(h).max(1),
                },
            });
            cx += ww;
        }
    }
    Ok(out)
}

impl Engine for Vision {
    fn name(&self) -> &'static str {
        "vision"
    }

    fn recognize(&mut self, img: &GrayImage, _ppi: u32) -> Result<Vec<Word>, EngineError> {
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| EngineError::Recognise(e.to_string()))?;
        // Engines run on blocking threads; the HTTP call borrows the runtime.
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| EngineError::Init("the vision engine needs the tokio runtime".into()))?;
        rt.block_on(self.call(png.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
5\t1\t1\t1\t1\t1\t10\t20\t30\t12\t96.5\tMetformin\n\
5\t1\t1\t1\t1\t2\t45\t20\t20\t12\t88\t500\n\
5\t1\t1\t1\t1\t3\t45\t20\t20\t12\t-1\t \n";
        let w = parse_tsv(tsv);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].text, "Metformin");
        assert_eq!(
            w[0].bbox,
            BBox {
                x: 10,
                y: 20,
                w: 30,
                h: 12
            }
        );
        assert!((w[0].conf - 96.5).abs() < 1e-3);
    }

    #[test]
    fn vision_lines_become_words() {
        let w = vision_words("```json\n{\"lines\":[{\"text\":\"Metformin 500 mg\",\"box\":[100,200,300,30],\"confidence\":0.9}]}\n```")
            .expect("parses");
        assert_eq!(
            w.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            ["Metformin", "500", "mg"]
        );
        assert!(w[1].bbox.x > w[0].bbox.x && w[2].bbox.x > w[1].bbox.x);
        assert_eq!(w[0].bbox.y, 200);
        assert!((w[0].conf - 90.0).abs() < 1e-3);
        assert!(vision_words("Sorry, I cannot help").is_err());
    }

    /// The vision engine against a local endpoint speaking the chat
    /// completions contract: the request carries the model, the prompt and
    /// the page as a PNG data URL with the bearer key; the answer's lines
    /// become words; an error status is reported with its body.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vision_contract_against_a_local_endpoint() {
        use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
        use std::sync::{Arc, Mutex};
        type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;
        let seen: Seen = Arc::default();
        async fn chat(
            State(seen): State<Seen>,
            headers: HeaderMap,
            Json(body): Json<serde_json::Value>,
        ) -> (axum::http::StatusCode, Json<serde_json::Value>) {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let refuse = body["model"] == "broken";
            if let Ok(mut s) = seen.lock() {
                s.push((auth, body));
            }
            if refuse {
                return (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({"error": {"message": "model overloaded"}})),
                );
            }
            let content = r#"{"lines":[{"text":"Metformin 500 mg","box":[10,20,200,24],"confidence":0.93},{"text":"1-0-1-0","box":[10,50,80,24]}]}"#;
            (
                axum::http::StatusCode::OK,
                Json(
                    serde_json::json!({"choices":[{"message":{"role":"assistant","content": content}}]}),
                ),
            )
        }
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://{addr}/v1");
        let img = GrayImage::from_pixel(40, 30, image::Luma([255]));
        let (u, i) = (url.clone(), img.clone());
        let words = tokio::task::spawn_blocking(move || {
            Vision::new(&u, "secret-key", "vision-1").recognize(&i, 300)
        })
        .await
        .expect("join")
        .expect("words");
        assert_eq!(
            words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            ["Metformin", "500", "mg", "1-0-1-0"]
        );
        assert_eq!(words[3].bbox.y, 50);
        assert!((words[0].conf - 93.0).abs() < 1e-3);
        assert!(
            (words[3].conf - 80.0).abs() < 1e-3,
            "no confidence given: 0.8"
        );
        {
            let s = seen.lock().expect("lock");
            let (auth, body) = &s[0];
            assert_eq!(auth.as_deref(), Some("Bearer secret-key"));
            assert_eq!(body["model"], "vision-1");
            let content = &body["messages"][0]["content"];
            assert_eq!(content[0]["text"], VISION_PROMPT);
            let data = content[1]["image_url"]["url"].as_str().expect("url");
            assert!(data.starts_with("data:image/png;base64,"), "{data}");
        }
        let err = tokio::task::spawn_blocking(move || {
            Vision::new(&url, "", "broken").recognize(&img, 300)
        })
        .await
        .expect("join")
        .expect_err("a 503 is an error");
        let msg = err.to_string();
        assert!(
            msg.contains("503") && msg.contains("model overloaded"),
            "{msg}"
        );
    }
}
