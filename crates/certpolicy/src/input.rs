//! Inputs parsed once with x509-parser, and the certification path found by names.

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::*;

use crate::report::{Subject, SubjectKind};

/// One supplied certificate: its DER, its parse result and how the report names it.
pub(crate) struct Cert<'a> {
    pub der: &'a [u8],
    pub parsed: Result<X509Certificate<'a>, String>,
    /// Bytes after the certificate's DER value: a structure failure when non-empty.
    pub trailing: usize,
    pub subject: Subject,
}

impl<'a> Cert<'a> {
    pub fn parse(der: &'a [u8], kind: SubjectKind, index: Option<usize>) -> Self {
        match X509Certificate::from_der(der) {
            Ok((rest, x509)) => {
                let name = x509.subject().to_string();
                Self {
                    der,
                    trailing: rest.len(),
                    parsed: Ok(x509),
                    subject: Subject::new(kind, index, name),
                }
            }
            Err(e) => Self {
                der,
                trailing: 0,
                parsed: Err(e.to_string()),
                subject: Subject::new(kind, index, format!("unparsable, {} bytes", der.len())),
            },
        }
    }

    pub fn x509(&self) -> Option<&X509Certificate<'a>> {
        self.parsed.as_ref().ok()
    }

    /// Self-issued as OpenSSL decides it for a trust anchor (`X509_self_signed(x, 0)`):
    /// issuer and subject are the same name and, when both key identifiers are present,
    /// the authority key identifier is the subject key identifier. Like OpenSSL without
    /// `X509_V_FLAG_CHECK_SS_SIGNATURE`, the anchor's own signature is not verified: trust
    /// in an anchor comes from its being configured, not from its signature.
    pub fn is_self_signed(&self) -> bool {
        self.x509().is_some_and(|x| {
            if x.issuer().as_raw() != x.subject().as_raw() {
                return false;
            }
            let authority = x.get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER);
            let subject = x.get_extension_unique(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER);
            match (authority, subject) {
                (Ok(Some(a)), Ok(Some(s))) => match (a.parsed_extension(), s.parsed_extension()) {
                    (
                        ParsedExtension::AuthorityKeyIdentifier(aki),
                        ParsedExtension::SubjectKeyIdentifier(ski),
                    ) => aki.key_identifier.as_ref().is_none_or(|id| id.0 == ski.0),
                    _ => false,
                },
                (Ok(_), Ok(_)) => true,
                _ => false,
            }
        })
    }
}

/// One supplied CRL.
pub(crate) struct Crl<'a> {
    pub der: &'a [u8],
    pub parsed: Result<CertificateRevocationList<'a>, String>,
    pub subject: Subject,
}

impl<'a> Crl<'a> {
    pub fn parse(der: &'a [u8], index: usize) -> Self {
        match CertificateRevocationList::from_der(der) {
            Ok((_, crl)) => {
                let name = crl.issuer().to_string();
                Self {
                    der,
                    parsed: Ok(crl),
                    subject: Subject::new(SubjectKind::Crl, Some(index), name),
                }
            }
            Err(e) => Self {
                der,
                parsed: Err(e.to_string()),
                subject: Subject::new(
                    SubjectKind::Crl,
                    Some(index),
                    format!("unparsable, {} bytes", der.len()),
                ),
            },
        }
    }
}

/// The authority (`authority = true`) or subject key identifier of a certificate.
fn key_id<'c>(x: &'c X509Certificate<'_>, authority: bool) -> Option<&'c [u8]> {
    x.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) if authority => {
                aki.key_identifier.as_ref().map(|id| id.0)
            }
            ParsedExtension::SubjectKeyIdentifier(ski) if !authority => Some(ski.0),
            _ => None,
        })
}

/// A step up the path from the leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Intermediate(usize),
    Anchor(usize),
}

/// Everything one evaluation looks at.
pub(crate) struct Inputs<'a> {
    pub leaf: Cert<'a>,
    pub intermediates: Vec<Cert<'a>>,
    pub anchors: Vec<Cert<'a>>,
    /// Whether each anchor is a real root (self-signed); computed once.
    pub anchor_is_root: Vec<bool>,
    pub crls: Vec<Crl<'a>>,
    /// The path above the leaf found by matching issuer to subject names; ends with an
    /// anchor when one was reached.
    pub path: Vec<Step>,
}

/// Paths longer than this are not built (webpki's own limit is similar); a loop of
/// cross-issued intermediates cannot make the walk run forever.
const MAX_PATH_STEPS: usize = 8;

impl<'a> Inputs<'a> {
    pub fn new(
        leaf: &'a CertificateDer<'_>,
        intermediates: &'a [CertificateDer<'_>],
        anchors: &'a [CertificateDer<'_>],
        crls: &'a [CertificateRevocationListDer<'_>],
    ) -> Self {
        let leaf = Cert::parse(leaf.as_ref(), SubjectKind::Leaf, None);
        let intermediates: Vec<_> = intermediates
            .iter()
            .enumerate()
            .map(|(i, c)| Cert::parse(c.as_ref(), SubjectKind::Intermediate, Some(i)))
            .collect();
        let anchors: Vec<_> = anchors
            .iter()
            .enumerate()
            .map(|(i, c)| Cert::parse(c.as_ref(), SubjectKind::TrustAnchor, Some(i)))
            .collect();
        let anchor_is_root = anchors.iter().map(Cert::is_self_signed).collect();
        let crls = crls
            .iter()
            .enumerate()
            .map(|(i, c)| Crl::parse(c.as_ref(), i))
            .collect();
        let mut inputs = Self {
            leaf,
            intermediates,
            anchors,
            anchor_is_root,
            crls,
            path: Vec::new(),
        };
        inputs.path = inputs.walk_names();
        inputs
    }

    pub fn cert(&self, step: Step) -> &Cert<'a> {
        match step {
            Step::Intermediate(i) => &self.intermediates[i],
            Step::Anchor(i) => &self.anchors[i],
        }
    }

    /// The CA certificates on the path, in order from the leaf's issuer up.
    pub fn path_cas(&self) -> impl Iterator<Item = (Step, &Cert<'a>)> {
        self.path.iter().map(|s| (*s, self.cert(*s)))
    }

    /// The anchor that ends the path, if one was reached.
    pub fn path_anchor(&self) -> Option<usize> {
        match self.path.last() {
            Some(Step::Anchor(i)) => Some(*i),
            _ => None,
        }
    }

    /// Follows issuer names from the leaf: an anchor with the issuer's name wins (roots
    /// before non-roots, as OpenSSL prefers the trust store); otherwise an unused
    /// intermediate with that name.
    fn walk_names(&self) -> Vec<Step> {
        let mut path = Vec::new();
        let Some(mut current) = self.leaf.x509() else {
            return path;
        };
        for _ in 0..MAX_PATH_STEPS {
            let issuer = current.issuer().as_raw();
            if current.subject().as_raw() == issuer && !path.is_empty() {
                break;
            }
            // A candidate must carry the issuer's name; one whose key identifier agrees
            // with the authority key identifier is preferred (CAs rolled over to a new key
            // keep their name).
            let wanted_key = key_id(current, true);
            let fit = |c: &Cert<'_>| {
                c.x509()
                    .filter(|x| x.subject().as_raw() == issuer)
                    .map(|x| match (wanted_key, key_id(x, false)) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    })
            };
            let anchor = (0..self.anchors.len())
                .filter_map(|i| fit(&self.anchors[i]).map(|keys_agree| (i, keys_agree)))
                .max_by_key(|&(i, keys_agree)| (keys_agree, self.anchor_is_root[i]));
            if let Some((i, _)) = anchor {
                path.push(Step::Anchor(i));
                break;
            }
            let next = (0..self.intermediates.len())
                .filter(|&i| !path.contains(&Step::Intermediate(i)))
                .filter_map(|i| fit(&self.intermediates[i]).map(|keys_agree| (i, keys_agree)))
                .max_by_key(|&(i, keys_agree)| (keys_agree, std::cmp::Reverse(i)))
                .map(|(i, _)| i);
            match next.and_then(|i| self.intermediates[i].x509().map(|x| (i, x))) {
                Some((i, x)) => {
                    path.push(Step::Intermediate(i));
                    current = x;
                }
                None => break,
            }
        }
        path
    }
}
