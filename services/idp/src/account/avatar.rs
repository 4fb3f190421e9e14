//! Avatars: an uploaded picture becomes a small square PNG stored in the idp database and
//! served by idp (`GET /avatars/{user_id}`), which the `picture` claim (OpenID Connect Core
//! 1.0 §5.1) then points at.
//!
//! An upload is decoded (PNG or JPEG, recognised by content, not by name or type) with
//! limits on its dimensions and on what the decoder may allocate, so a small file that
//! claims a huge image (a decompression bomb) is refused before any pixel is decoded; then
//! cropped to a centred square, resized to `account.avatar_size` pixels a side and encoded
//! afresh as PNG. Nothing of the upload but its pixels survives: no EXIF or other metadata
//! (location, camera), no embedded profiles or comments. Decoding runs on the blocking
//! pool, never on the async runtime.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};

use super::config::AccountConfig;

/// Why an upload was refused (each is the user's problem: a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AvatarRefused {
    /// Larger than `account.avatar_max_bytes`.
    #[error("The picture is larger than {0} bytes.")]
    TooLarge(usize),
    /// Not a PNG or JPEG image, or a damaged one.
    #[error("The file is not a PNG or JPEG picture.")]
    NotAnImage,
    /// More pixels a side than `account.avatar_max_dimension`, or more memory to decode
    /// than allowed.
    #[error("The picture is too large: at most {0} pixels a side.")]
    TooManyPixels(u32),
}

/// Decodes `bytes` within the limits of `config` and returns the PNG to store:
/// `avatar_size` × `avatar_size` pixels, centred crop, no metadata.
pub(crate) fn normalise(bytes: &[u8], config: &AccountConfig) -> Result<Vec<u8>, AvatarRefused> {
    if bytes.len() > config.avatar_max_bytes {
        return Err(AvatarRefused::TooLarge(config.avatar_max_bytes));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| AvatarRefused::NotAnImage)?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(AvatarRefused::NotAnImage);
    }
    let side = config.avatar_max_dimension;
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // RGBA8 of the largest accepted image, plus room for the decoder's own buffers.
    limits.max_alloc = Some(u64::from(side) * u64::from(side) * 4 + 16 * 1024 * 1024);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => AvatarRefused::TooManyPixels(side),
        _ => AvatarRefused::NotAnImage,
    })?;
    let size = config.avatar_size;
    let square = decoded.resize_to_fill(size, size, FilterType::Triangle);
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(square.to_rgba8())
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|_| AvatarRefused::NotAnImage)?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn pictures_become_small_square_pngs() {
        let config = AccountConfig::default();
        let out = normalise(&png(300, 120), &config).unwrap();
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!(
            (back.width(), back.height()),
            (config.avatar_size, config.avatar_size)
        );
        assert_eq!(
            normalise(b"GIF89a not ours", &config),
            Err(AvatarRefused::NotAnImage)
        );
        assert_eq!(normalise(b"hello", &config), Err(AvatarRefused::NotAnImage));
        let small = AccountConfig {
            avatar_max_dimension: 100,
            ..AccountConfig::default()
        };
        assert_eq!(
            normalise(&png(101, 10), &small),
            Err(AvatarRefused::TooManyPixels(100))
        );
        let tiny = AccountConfig {
            avatar_max_bytes: 10,
            ..AccountConfig::default()
        };
        assert_eq!(
            normalise(&png(1, 1), &tiny),
            Err(AvatarRefused::TooLarge(10))
        );
    }
}
