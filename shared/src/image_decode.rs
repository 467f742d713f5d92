//! Decoding an untrusted image within limits: PNG or JPEG only, the byte
//! limit checked first and the pixel limit read from the header before any
//! pixel is decoded (a decompression bomb costs nothing), then the EXIF
//! orientation applied. Every image a person or kiosk sends goes through it.

use image::{DynamicImage, ImageDecoder as _, ImageReader};
use std::io::Cursor;
use thiserror::Error;

/// Why an image was refused.
#[derive(Debug, Error, PartialEq)]
pub enum ImageError {
    /// Larger than the byte limit.
    #[error("the file is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not an image format we read.
    #[error("this is not a PNG or JPEG image")]
    Format,
    /// More pixels than allowed (a decompression bomb, or a huge scan).
    #[error("the image is {w}×{h} pixels; the limit is {max} pixels on a side")]
    Dimensions {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
        /// Largest side allowed.
        max: u32,
    },
    /// The data is damaged.
    #[error("the image could not be read: {0}")]
    Corrupt(String),
}

/// Limits on what is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file.
    pub max_bytes: usize,
    /// Largest side in pixels.
    pub max_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 20 * 1024 * 1024,
            max_side: 10_000,
        }
    }
}

/// Decodes PNG or JPEG within the limits and applies the EXIF orientation.
/// The dimensions are checked from the header before any pixel is
/// decoded, so a bomb costs nothing.
pub fn decode(bytes: &[u8], limits: Limits) -> Result<DynamicImage, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        _ => return Err(ImageError::Format),
    }
    let (w, h) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?
        .into_dimensions()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if w > limits.max_side || h > limits.max_side || w == 0 || h == 0 {
        return Err(ImageError::Dimensions {
            w,
            h,
            max: limits.max_side,
        });
    }
    let mut reader = reader;
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    // Four bytes a pixel at most, plus the decoder's own working space.
    l.max_alloc = Some(u64::from(limits.max_side).pow(2) * 4 + (64 << 20));
    reader.limits(l);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn refuses_bad_input_with_reasons() {
        assert!(matches!(
            decode(b"not an image", Limits::default()),
            Err(ImageError::Format)
        ));
        let big = vec![0u8; 11];
        assert!(matches!(
            decode(
                &big,
                Limits {
                    max_bytes: 10,
                    max_side: 100
                }
            ),
            Err(ImageError::TooLarge { size: 11, max: 10 })
        ));
        // Too many pixels is refused from the header, before decoding.
        let img = GrayImage::from_pixel(20, 10, Luma([0]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png)
            .expect("png");
        let ok = decode(
            buf.get_ref(),
            Limits {
                max_bytes: 1 << 20,
                max_side: 15,
            },
        );
        assert!(matches!(
            ok,
            Err(ImageError::Dimensions {
                w: 20,
                h: 10,
                max: 15
            })
        ));
        let ok = decode(buf.get_ref(), Limits::default()).expect("decodes");
        assert_eq!((ok.width(), ok.height()), (20, 10));
        let mut cut = buf.into_inner();
        cut.truncate(cut.len() - 12);
        assert!(matches!(
            decode(&cut, Limits::default()),
            Err(ImageError::Corrupt(_))
        ));
    }
}
