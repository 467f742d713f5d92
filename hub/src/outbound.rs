//! Messages that leave the hub: e-mail over SMTP (lettre) and JSON webhooks
//! (reqwest). Used by cold-chain escalations and patient notifications. Each
//! call says what happened in words, for the caller's log or audit trail.

use std::time::Duration;

/// How long one send may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Send a plain-text e-mail through `smtp://host:port`.
pub async fn email(
    smtp_url: &str,
    from: &str,
    to: &[String],
    subject: &str,
    text: &str,
) -> Result<String, String> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let Some((host, port)) = smtp_url
        .strip_prefix("smtp://")
        .and_then(|hp| hp.rsplit_once(':'))
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
    else {
        return Err(format!(
            "e-mail not sent: smtp_url {smtp_url:?} is not smtp://host:port"
        ));
    };
    // Declared UTF-8: patients' names and messages are not ASCII.
    let mut m = Message::builder()
        .subject(subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    m = m.from(
        from.parse()
            .map_err(|e| format!("e-mail not sent: from {from:?}: {e}"))?,
    );
    for t in to {
        m = m.to(t
            .parse()
            .map_err(|e| format!("e-mail not sent: to {t:?}: {e}"))?);
    }
    let msg = m
        .body(text.to_owned())
        .map_err(|e| format!("e-mail not sent: {e}"))?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(TIMEOUT))
        .build();
    mailer
        .send(msg)
        .await
        .map(|_| format!("e-mailed {}", to.join(", ")))
        .map_err(|e| format!("e-mail failed: {e}"))
}

/// POST `body` as JSON; a non-2xx answer is a failure.
pub async fn webhook(url: &str, body: &serde_json::Value) -> Result<String, String> {
    match reqwest::Client::new()
        .post(url)
        .json(body)
        .timeout(TIMEOUT)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Ok(format!("webhook {url}: {}", r.status())),
        Ok(r) => Err(format!("webhook {url} refused: {}", r.status())),
        Err(e) => Err(format!("webhook {url} unreachable: {e}")),
    }
}
