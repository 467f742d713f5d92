//! USB UVC / V4L2 cameras through nokhwa (cargo feature `usb-camera`, on for Pi
//! builds). The device is opened lazily and reopened after any failure, so an
//! unplugged camera reports "out of order" and comes back by itself.
//!
//! Frames are taken as greyscale without a colour conversion: YUYV and NV12
//! already carry a luma plane, GRAY is luma, and MJPEG is decoded with our own
//! `image` crate. Pi CSI cameras, where nokhwa fails, want a libcamera source
//! behind the same [`FrameSource`] trait.

use crate::camera::{CameraError, FrameSource};
use crate::config::Camera as Settings;
use image::GrayImage;
use nokhwa::utils::{
    CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Formats we can turn into greyscale cheaply, best first.
const FORMATS: &[FrameFormat] = &[
    FrameFormat::YUYV,
    FrameFormat::MJPEG,
    FrameFormat::GRAY,
    FrameFormat::NV12,
];

/// A USB camera. nokhwa's camera handle is not `Send`, so it lives on a
/// thread of its own and frames are asked for over a channel.
pub struct UsbCamera {
    ask: mpsc::Sender<()>,
    frames: mpsc::Receiver<Result<Option<GrayImage>, CameraError>>,
    describe: String,
}

/// The thread-side camera.
struct Device {
    settings: Settings,
    index: u32,
    cam: Option<nokhwa::Camera>,
    retry_at: Instant,
}

/// The V4L2 index of a device setting: `0`, or `/dev/video0`.
pub fn device_index(device: &str) -> Result<u32, CameraError> {
    let d = device.trim();
    d.strip_prefix("/dev/video")
        .unwrap_or(d)
        .parse()
        .map_err(|_| {
            CameraError::Unavailable(format!("camera.device {d:?} is not /dev/videoN or N"))
        })
}

impl UsbCamera {
    /// A camera for `settings` (opened on the first frame).
    pub fn new(settings: Settings) -> Result<Self, CameraError> {
        let describe = format!(
            "USB camera {} ({}×{} at {} fps)",
            settings.device, settings.width, settings.height, settings.fps
        );
        let index = device_index(&settings.device)?;
        let (ask, asked) = mpsc::channel::<()>();
        let (give, frames) = mpsc::channel();
        std::thread::Builder::new()
            .name("usb-camera".into())
            .spawn(move || {
                // Built here: the handle it will hold must never cross threads.
                let mut dev = Device {
                    index,
                    settings,
                    cam: None,
                    retry_at: Instant::now(),
                };
                while asked.recv().is_ok() {
                    if give.send(dev.next_frame()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| CameraError::Unavailable(format!("camera thread: {e}")))?;
        Ok(Self {
            ask,
            frames,
            describe,
        })
    }
}

impl FrameSource for UsbCamera {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, CameraError> {
        self.ask
            .send(())
            .map_err(|_| CameraError::Unavailable("camera thread stopped".into()))?;
        self.frames
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| CameraError::Unavailable("no frame from the camera in 5 s".into()))?
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl Device {
    fn open(&self) -> Result<nokhwa::Camera, CameraError> {
        let want = CameraFormat::new(
            Resolution::new(self.settings.width, self.settings.height),
            FrameFormat::YUYV,
            self.settings.fps,
        );
        let req = RequestedFormat::with_formats(RequestedFormatType::Closest(want), FORMATS);
        let mut cam = nokhwa::Camera::new(CameraIndex::Index(self.index), req)
            .map_err(|e| CameraError::Unavailable(format!("{}: {e}", self.settings.device)))?;
        cam.open_stream()
            .map_err(|e| CameraError::Unavailable(format!("{}: {e}", self.settings.device)))?;
        tracing::info!(device = %self.settings.device, format = %cam.camera_format(), "camera open");
        Ok(cam)
    }
}

/// Greyscale from one raw frame.
pub fn to_gray(format: FrameFormat, w: u32, h: u32, data: &[u8]) -> Result<GrayImage, String> {
    let px = (w as usize) * (h as usize);
    let luma: Vec<u8> = match format {
        FrameFormat::YUYV if data.len() >= px * 2 => {
            data.iter().step_by(2).take(px).copied().collect()
        }
        FrameFormat::NV12 | FrameFormat::GRAY if data.len() >= px => data[..px].to_vec(),
        FrameFormat::MJPEG => {
            return image::load_from_memory(data)
                .map(|i| i.to_luma8())
                .map_err(|e| format!("MJPEG frame: {e}"))
        }
        other => return Err(format!("{other} frame of {} bytes for {w}×{h}", data.len())),
    };
    GrayImage::from_raw(w, h, luma).ok_or_else(|| "frame size mismatch".into())
}

impl Device {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, CameraError> {
        if self.cam.is_none() {
            if Instant::now() < self.retry_at {
                std::thread::sleep(Duration::from_millis(200));
                return Err(CameraError::Unavailable(format!(
                    "{}: waiting to retry",
                    self.settings.device
                )));
            }
            match self.open() {
                Ok(c) => self.cam = Some(c),
                Err(e) => {
                    self.retry_at = Instant::now() + Duration::from_secs(2);
                    return Err(e);
                }
            }
        }
        let Some(cam) = self.cam.as_mut() else {
            return Ok(None);
        };
        let frame = match cam.frame() {
            Ok(f) => f,
            Err(e) => {
                // Unplugged or driver trouble: drop the handle and reopen later.
                self.cam = None;
                self.retry_at = Instant::now() + Duration::from_secs(2);
                return Err(CameraError::Unavailable(format!(
                    "{}: {e}",
                    self.settings.device
                )));
            }
        };
        let r = frame.resolution();
        to_gray(
            frame.source_frame_format(),
            r.width(),
            r.height(),
            frame.buffer(),
        )
        .map(Some)
        .map_err(CameraError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_comes_straight_from_yuyv_and_nv12() {
        // 2×1 YUYV: Y0 U Y1 V
        let g = to_gray(FrameFormat::YUYV, 2, 1, &[10, 128, 20, 128]).unwrap();
        assert_eq!(g.into_raw(), vec![10, 20]);
        let g = to_gray(FrameFormat::NV12, 2, 2, &[1, 2, 3, 4, 128, 128]).unwrap();
        assert_eq!(g.into_raw(), vec![1, 2, 3, 4]);
        assert!(to_gray(FrameFormat::YUYV, 4, 4, &[0; 3]).is_err());
        assert!(to_gray(FrameFormat::MJPEG, 4, 4, b"not a jpeg").is_err());
        assert_eq!(device_index("/dev/video2").unwrap(), 2);
        assert_eq!(device_index("0").unwrap(), 0);
        assert!(device_index("/dev/sda").is_err());
    }

    /// The real nokhwa/V4L2 path against a device that does not exist: an
    /// error the kiosk turns into "out of order", never a panic.
    #[test]
    fn a_missing_device_is_unavailable() {
        let mut c = UsbCamera::new(Settings {
            device: "/dev/video97".into(),
            ..Settings::default()
        })
        .unwrap();
        match c.next_frame() {
            Err(CameraError::Unavailable(m)) => assert!(m.contains("/dev/video97"), "{m}"),
            other => panic!("expected unavailable, got {other:?}"),
        }
        // It keeps answering (and will reopen when the device appears).
        assert!(c.next_frame().is_err());
    }
}
