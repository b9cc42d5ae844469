//! Audio and video decoding through FFmpeg, as gasbench decodes (its audio fallback runs the same
//! `ffmpeg` command; decord decodes video with FFmpeg). These tests need `ffmpeg`; without it
//! they say so and pass, unless ARENA_REQUIRE_FFMPEG=1 (set by .ci/run).

use std::path::Path;
use std::process::Command;

use arena_detector::preprocess::{Rgb, decode_audio, decode_audio_ffmpeg, fit_length, load_frames};
use arena_detector::synth::{Kind, Rng, render};

fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success());
    let required = std::env::var("ARENA_REQUIRE_FFMPEG").is_ok_and(|v| v == "1");
    assert!(ok || !required, "ffmpeg is required (ARENA_REQUIRE_FFMPEG=1) but cannot run");
    if !ok {
        eprintln!("no ffmpeg here; set ARENA_REQUIRE_FFMPEG=1 to make this a failure");
    }
    ok
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn the_wav_fast_path_is_what_ffmpeg_computes() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.wav");
    let mut rng = Rng::new(5);
    let samples: Vec<i16> = (0..16000).map(|_| (rng.next_u64() >> 48) as u16 as i16).collect();
    write_wav(&p, 16000, 1, &samples);
    let native = decode_audio(&p, 16000).unwrap();
    let via_ffmpeg = decode_audio_ffmpeg(&p, 16000).unwrap();
    assert_eq!(native.len(), 16000);
    assert!(native.iter().zip(&via_ffmpeg).all(|(a, b)| a.to_bits() == b.to_bits()), "bit-identical");
    assert_eq!(native[0], samples[0] as f32 / 32768.0);
}

#[test]
fn other_rates_and_stereo_are_resampled_and_mixed_down() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("stereo.wav");
    // 1.5 s of a 440 Hz tone at 44.1 kHz, in both channels at 0.5 amplitude.
    let n = 66150;
    let tone = |t: f64| (0.5 * (std::f64::consts::TAU * 440.0 * t).sin() * 32767.0).round() as i16;
    let samples: Vec<i16> = (0..n).flat_map(|i| [tone(i as f64 / 44100.0); 2]).collect();
    write_wav(&p, 44100, 2, &samples);
    let wave = decode_audio(&p, 16000).unwrap();
    assert!((wave.len() as i64 - 24000).abs() <= 1, "{} samples", wave.len());
    // Away from the edges, the resampled tone is the tone at 16 kHz. FFmpeg mixes stereo down as
    // (L + R) / sqrt(2) (its -3 dB centre level), not as the mean: 0.5 in both channels is 0.707.
    let amplitude = 0.5 * std::f64::consts::SQRT_2;
    let worst = (1000..23000)
        .map(|i| {
            (wave[i] as f64 - amplitude * (std::f64::consts::TAU * 440.0 * i as f64 / 16000.0).sin()).abs()
        })
        .fold(0.0, f64::max);
    assert!(worst < 0.01, "worst deviation {worst}");
    // gasbench's length rule: centre crop to 1 s.
    let clip = fit_length(wave.clone(), 16000);
    assert_eq!(clip.len(), 16000);
    assert_eq!(clip[0], wave[(wave.len() - 16000) / 2]);
}

fn frame(seed: u64) -> Rgb {
    let data = render(Kind::Real, &mut Rng::new(seed), 40, 56);
    Rgb { height: 40, width: 56, data }
}

#[test]
fn video_files_decode_to_the_frames_gasbench_picks() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Rgb> = (0..6).map(frame).collect();
    for (i, f) in frames.iter().enumerate() {
        image::save_buffer(
            dir.path().join(format!("f{i:04}.png")),
            &f.data,
            56,
            40,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    }
    // Lossless RGB (FFV1), so decoded frames equal the sources exactly.
    let video = dir.path().join("clip.mkv");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-framerate", "30", "-i"])
        .arg(dir.path().join("f%04d.png"))
        .args(["-c:v", "ffv1", "-pix_fmt", "bgr0"])
        .arg(&video));

    let first = load_frames(&video, 3, None).unwrap();
    assert_eq!(first, frames[..3].to_vec(), "the first num_frames frames");
    // 30 fps sampled at 15 fps: every round(30 / 15) = 2nd frame.
    let stepped = load_frames(&video, 3, Some(15.0)).unwrap();
    assert_eq!(stepped, vec![frames[0].clone(), frames[2].clone(), frames[4].clone()]);
    // Too few frames: the last one repeats.
    let padded = load_frames(&video, 8, None).unwrap();
    assert_eq!(padded.len(), 8);
    assert_eq!(padded[7], frames[5]);

    // A folder of frames: the first files in name order.
    let from_dir = load_frames(dir.path(), 2, None).unwrap();
    assert_eq!(from_dir, frames[..2].to_vec());

    // Not a video.
    std::fs::write(dir.path().join("bad.mp4"), b"not a video").unwrap();
    assert!(load_frames(&dir.path().join("bad.mp4"), 2, None).is_err());
}
