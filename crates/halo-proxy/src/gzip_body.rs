//! A response body compressed as it streams: nginx's gzip member (its 10-byte header, raw
//! deflate, CRC-32 and length), each chunk deflated as it arrives, never the whole body held.
//! As nginx, output goes out when deflate produces it (no flush per chunk), and all of it at
//! the end.

use std::task::{ready, Context, Poll};

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use http::HeaderMap;
use http_body::Frame;

use crate::body::{BoxError, ResponseKind};

/// nginx's gzip header: deflate, no flags, no mtime, OS "Unix".
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

/// The compressing wrapper of a response body.
#[derive(Debug)]
pub(crate) struct GzipBody {
    inner: ResponseKind,
    deflate: Compress,
    crc: Crc,
    header_sent: bool,
    /// The deflate stream and the trailer were sent.
    done: bool,
    /// Trailers of the inner body (HTTP/2 upstreams), sent after the compressed data.
    trailers: Option<HeaderMap>,
}

impl GzipBody {
    pub fn new(inner: ResponseKind, level: u32) -> Self {
        GzipBody {
            inner,
            deflate: Compress::new(Compression::new(level), false),
            crc: Crc::new(),
            header_sent: false,
            done: false,
            trailers: None,
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.done {
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match ready!(self.inner.poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        self.crc.update(&data);
                        let out = self.deflate(&data, FlushCompress::None)?;
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.trailers = Some(trailers);
                        }
                        return Poll::Ready(Some(self.finish().map(Frame::data)));
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => return Poll::Ready(Some(self.finish().map(Frame::data))),
            }
        }
    }

    /// The rest of the deflate stream and the gzip trailer.
    fn finish(&mut self) -> Result<Bytes, BoxError> {
        self.done = true;
        let mut out = self.deflate(&[], FlushCompress::Finish)?.to_vec();
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
        Ok(Bytes::from(out))
    }

    /// Feeds `input` to deflate; returns what it produced (with the header first, once).
    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) -> Result<Bytes, BoxError> {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        if !self.header_sent {
            self.header_sent = true;
            out.extend_from_slice(&GZIP_HEADER);
        }
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let (before_in, before_out) = (self.deflate.total_in(), out.len());
            let status = self.deflate.compress_vec(input, &mut out, flush)?;
            let used = usize::try_from(self.deflate.total_in() - before_in).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            let room_left = out.len() < out.capacity();
            match status {
                Status::StreamEnd => break,
                _ if flush == FlushCompress::Finish => {
                    if used == 0 && out.len() == before_out && room_left {
                        // No progress with room to spare: nothing more will come.
                        break;
                    }
                }
                _ => {
                    if input.is_empty() && room_left {
                        break;
                    }
                }
            }
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Read;

    fn drain(mut body: GzipBody) -> Vec<u8> {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        loop {
            match body.poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        out.extend_from_slice(&data);
                    }
                }
                Poll::Ready(None) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(body.is_end_stream());
        out
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn compresses_to_a_gzip_member_that_decodes() {
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| b"abcdefgh"[(i % 8) as usize])
            .collect();
        for level in [1, 6, 9] {
            let body = GzipBody::new(ResponseKind::Full(Some(Bytes::from(text.clone()))), level);
            let out = drain(body);
            assert_eq!(&out[..10], &GZIP_HEADER);
            assert!(out.len() < text.len() / 10);
            assert_eq!(gunzip(&out), text);
        }
    }

    #[test]
    fn an_empty_body_is_an_empty_member() {
        let out = drain(GzipBody::new(ResponseKind::Empty, 1));
        assert_eq!(gunzip(&out), b"");
        assert_eq!(out.len(), 20);
    }

    #[test]
    fn incompressible_data_survives() {
        let mut x: u32 = 12345;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let out = drain(GzipBody::new(
            ResponseKind::Full(Some(Bytes::from(noise.clone()))),
            9,
        ));
        assert_eq!(gunzip(&out), noise);
    }
}
