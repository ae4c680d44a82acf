//! The trust flow's answers: what a phone needs to trust the device's own certificate authority
//! (`crate::tls`), and whether this connection already is HTTPS.

use hyper::{Response, StatusCode, header};
use serde_json::json;

use super::error::ApiError;
use super::{App, Body, full, json_no_store};

/// `GET /api/tls`.
pub(super) fn status(app: &App, secure: bool) -> Response<Body> {
    let (mode, ca) = match &app.tls {
        None => ("off", None),
        Some(tls) => match tls.ca_der() {
            Some(der) => ("auto", Some(der)),
            None => ("own", None),
        },
    };
    let ca = ca.map(|der| {
        let (name, not_after) = crate::tls::describe(der);
        json!({
            "name": name,
            "fingerprint_sha256": crate::tls::fingerprint(der),
            "not_after": super::rfc3339(not_after),
        })
    });
    json_no_store(StatusCode::OK, &json!({ "tls": mode, "secure": secure, "ca": ca }))
}

fn ca(app: &App) -> Result<&[u8], ApiError> {
    app.tls.as_ref().and_then(|t| t.ca_der()).ok_or(ApiError::NoLocalCa)
}

fn download(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\""))
        .header(header::CACHE_CONTROL, "no-cache")
        .body(full(body))
        .expect("valid headers")
}

/// `GET /spis-ca.crt`: DER, which Android's "Install a certificate", macOS's Keychain Access,
/// Windows and Linux's trust stores all take.
pub(super) fn ca_cert(app: &App) -> Result<Response<Body>, ApiError> {
    Ok(download("application/x-x509-ca-cert", "spis-ca.crt", ca(app)?.to_vec()))
}

/// `GET /spis-ca.mobileconfig`: the CA in an iOS configuration profile (Settings, Profile
/// Downloaded, Install; then General, About, Certificate Trust Settings, full trust).
pub(super) fn ca_profile(app: &App) -> Result<Response<Body>, ApiError> {
    let der = ca(app)?;
    Ok(download("application/x-apple-aspen-config", "spis-ca.mobileconfig", profile(der).into_bytes()))
}

/// The plist of a profile with one `com.apple.security.root` payload. Its identifiers and UUIDs
/// come from the CA's fingerprint: the same CA is the same profile, installed again or not.
fn profile(der: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let (name, _) = crate::tls::describe(der);
    let digest = sha2::Sha256::digest(der);
    let uuid = |salt: u8| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&sha2::Sha256::digest([&digest[..], &[salt]].concat())[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = data_encoding::HEXUPPER.encode(&b);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    };
    let id = data_encoding::HEXLOWER.encode(&digest[..8]);
    let name = xml_escape(&name);
    let data = base64::engine::general_purpose::STANDARD.encode(der);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadCertificateFileName</key>
			<string>spis-ca.crt</string>
			<key>PayloadContent</key>
			<data>{data}</data>
			<key>PayloadDescription</key>
			<string>Lets this device open the gallery over HTTPS. The authority may only vouch for .local names and private addresses.</string>
			<key>PayloadDisplayName</key>
			<string>{name}</string>
			<key>PayloadIdentifier</key>
			<string>local.spis.ca.{id}</string>
			<key>PayloadType</key>
			<string>com.apple.security.root</string>
			<key>PayloadUUID</key>
			<string>{ca_uuid}</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
		</dict>
	</array>
	<key>PayloadDescription</key>
	<string>The certificate authority of your spis photo server.</string>
	<key>PayloadDisplayName</key>
	<string>{name}</string>
	<key>PayloadIdentifier</key>
	<string>local.spis.{id}</string>
	<key>PayloadRemovalDisallowed</key>
	<false/>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>{profile_uuid}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
"#,
        ca_uuid = uuid(1),
        profile_uuid = uuid(2),
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
