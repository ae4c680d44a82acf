//! Integration tests: the real `spis` binary, real folders, real photos, real xattrs.
//!
//! Compiled as one test binary (one link, shared helpers in `util`).

mod access;
mod api_errors;
mod attacks;
mod exiftool;
mod favorites;
mod hostile;
mod img;
mod library;
mod live;
mod originals;
mod proxy;
mod replicas;
mod shares;
mod startup;
mod thumbs;
mod tls;
mod trash;
mod uploads;
mod util;
mod web_app;
mod zip;
