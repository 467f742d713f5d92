//! Cameras behind one trait: the simulator's camera (frames shown to it by the
//! demo and the tests), image files, and USB UVC/V4L2 cameras through nokhwa
//! (`camera_usb`, cargo feature `usb-camera`). A libcamera source for Pi CSI
//! cameras, where nokhwa fails, would slot in behind the same trait.

use image::GrayImage;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why no frame came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// The device is gone (unplugged, driver error): the kiosk shows "out of order".
    #[error("camera unavailable: {0}")]
    Unavailable(String),
}

/// Anything that produces greyscale frames.
pub trait FrameSource: Send {
    /// The next frame; `Ok(None)` when there is nothing in front of the camera
    /// worth decoding (the simulator's empty scene). May block up to one frame time.
    fn next_frame(&mut self) -> Result<Option<GrayImage>, CameraError>;
    /// For logs and status.
    fn describe(&self) -> String;
}

/// A camera that cannot work in this build or setup: every frame is an
/// "unavailable" with the reason, so the screen says out of order and the hub
/// is told, instead of the kiosk pretending to scan.
pub struct Missing(pub String);

impl FrameSource for Missing {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, CameraError> {
        std::thread::sleep(Duration::from_secs(1));
        Err(CameraError::Unavailable(self.0.clone()))
    }
    fn describe(&self) -> String {
        format!("no camera: {}", self.0)
    }
}

/// The camera `[camera]` names.
pub fn open_configured(c: &crate::config::Camera) -> Box<dyn FrameSource> {
    #[cfg(feature = "usb-camera")]
    {
        match crate::camera_usb::UsbCamera::new(c.clone()) {
            Ok(cam) => Box::new(cam),
            Err(e) => Box::new(Missing(e.to_string())),
        }
    }
    #[cfg(not(feature = "usb-camera"))]
    {
        Box::new(Missing(format!(
            "camera.device = {:?}, but this build has no USB camera support (cargo feature usb-camera)",
            c.device
        )))
    }
}

#[derive(Default)]
struct Scene {
    queue: VecDeque<(GrayImage, Duration)>,
    current: Option<(GrayImage, Instant, Duration)>,
    unplugged: bool,
    /// When the next frame is due: a camera delivers at its own cadence,
    /// whatever the reader spent on the last frame.
    next_due: Option<Instant>,
}

/// The simulated camera's frame interval (15 fps).
pub const SIM_FRAME: Duration = Duration::from_micros(66_667);

/// The simulator's camera: shows each image it is given for a while, as a
/// patient holds a code up, then the next; an empty scene in between.
#[derive(Clone, Default)]
pub struct SimCamera {
    scene: Arc<Mutex<Scene>>,
}

impl SimCamera {
    /// Hold `img` in front of the camera for `hold`.
    pub fn show(&self, img: GrayImage, hold: Duration) {
        let mut s = self.scene.lock().unwrap_or_else(|e| e.into_inner());
        s.queue.push_back((img, hold));
    }

    /// Take away whatever is held up, and everything waiting to be.
    pub fn clear(&self) {
        let mut s = self.scene.lock().unwrap_or_else(|e| e.into_inner());
        s.queue.clear();
        s.current = None;
    }

    /// Unplug or replug it.
    pub fn set_unplugged(&self, unplugged: bool) {
        self.scene
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unplugged = unplugged;
    }

    /// What a camera makes of a perfect image under indoor light: paper is never
    /// pure white, and the corners are a little darker.
    pub fn as_photo(img: &GrayImage) -> GrayImage {
        let (w, h) = img.dimensions();
        let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
        let rmax = (cx * cx + cy * cy).sqrt();
        GrayImage::from_fn(w, h, |x, y| {
            let v = f64::from(img.get_pixel(x, y).0[0]);
            let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
            let vignette = 1.0 - 0.15 * ((dx * dx + dy * dy).sqrt() / rmax).powi(2);
            image::Luma([((v * 0.8 + 12.0) * vignette).clamp(0.0, 255.0) as u8])
        })
    }

    /// A QR code of `text` as a patient's phone or paper would show it.
    pub fn render_qr(text: &str) -> Result<GrayImage, String> {
        let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
        let modules = code.width() as u32;
        let colors = code.to_colors();
        let scale = 4u32;
        let quiet = 4u32;
        let side = (modules + 2 * quiet) * scale;
        Ok(GrayImage::from_fn(side, side, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark = mx >= quiet
                && my >= quiet
                && mx < quiet + modules
                && my < quiet + modules
                && colors[((my - quiet) * modules + (mx - quiet)) as usize] == qrcode::Color::Dark;
            image::Luma([if dark { 20 } else { 235 }])
        }))
    }
}

impl FrameSource for SimCamera {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, CameraError> {
        let due = {
            let mut s = self.scene.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            // A reader that fell more than a frame behind gets the next fresh frame, as from a real camera.
            let due = s
                .next_due
                .filter(|d| *d + SIM_FRAME > now)
                .unwrap_or(now + SIM_FRAME);
            s.next_due = Some(due + SIM_FRAME);
            due
        };
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut s = self.scene.lock().unwrap_or_else(|e| e.into_inner());
        if s.unplugged {
            return Err(CameraError::Unavailable(
                "simulated camera unplugged".into(),
            ));
        }
        if let Some((_, since, hold)) = &s.current {
            if since.elapsed() > *hold {
                s.current = None;
            }
        }
        if s.current.is_none() {
            if let Some((img, hold)) = s.queue.pop_front() {
                s.current = Some((img, Instant::now(), hold));
            }
        }
        Ok(s.current.as_ref().map(|(img, _, _)| img.clone()))
    }

    fn describe(&self) -> String {
        "simulated camera".into()
    }
}

/// Image files, each shown once (for `scan` and offline checks).
pub struct Files {
    files: VecDeque<std::path::PathBuf>,
}

impl Files {
    /// These files, in order.
    pub fn new(files: impl IntoIterator<Item = std::path::PathBuf>) -> Self {
        Self {
            files: files.into_iter().collect(),
        }
    }
}

impl FrameSource for Files {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, CameraError> {
        let Some(f) = self.files.pop_front() else {
            return Ok(None);
        };
        image::open(&f)
            .map(|i| Some(i.to_luma8()))
            .map_err(|e| CameraError::Unavailable(format!("{}: {e}", f.display())))
    }

    fn describe(&self) -> String {
        format!("{} image file(s)", self.files.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_code_is_read_back_through_the_pipeline() -> Result<(), String> {
        let text = "(01)09506000134352(17)271231(10)ABC123";
        let img = SimCamera::render_qr(text)?;
        let mut cam = SimCamera::default();
        cam.show(img, Duration::from_millis(500));
        let frame = cam
            .next_frame()
            .map_err(|e| e.to_string())?
            .ok_or("no frame")?;
        let r = crate::qr::decode(&frame, Duration::from_millis(500));
        assert_eq!(r.codes.first().map(|c| c.text.as_str()), Some(text));
        cam.set_unplugged(true);
        assert!(cam.next_frame().is_err());
        Ok(())
    }
}
