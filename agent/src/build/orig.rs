//! EDGE: the orig tarball of a `3.0 (quilt)` package, found the way
//! git-buildpackage finds it: the `pristine-tar` branch (regenerated with
//! the `pristine-tar` tool), else the DEP-14 upstream tag exported with
//! `git archive`, else a tarball beside a `--path` tree. It is placed
//! beside the checkout, where dpkg-source looks for it.

use std::path::Path;

use super::git;
use super::plan::{self, ChangelogTop};
use super::run::{BuildSpec, Origin};

/// Puts the orig tarball into `work`; says where it came from, or (the
/// error) every place that was tried.
pub fn fetch_orig(
    spec: &BuildSpec,
    top: &ChangelogTop,
    src: &Path,
    work: &Path,
) -> Result<String, String> {
    let upstream = plan::upstream_version(&top.version);
    let prefix = plan::orig_tarball_prefix(&top.source, upstream);
    let tag = plan::plan_upstream_tag(upstream);
    let mut tried = Vec::new();
    match &spec.origin {
        Origin::Git { url, .. } => {
            let has = |name: &str| git::has_ref(url, name).map_err(|e| e.to_string());
            let tag_ref = format!("refs/tags/{tag}");
            let has_tag = has(&tag_ref)?;
            if has("refs/heads/pristine-tar")? {
                // pristine-tar rebuilds the tarball from the upstream tree,
                // so that tree must be here too.
                git::fetch_ref(url, src, "refs/heads/pristine-tar", false)
                    .map_err(|e| e.to_string())?;
                if has_tag {
                    git::fetch_ref(url, src, &tag_ref, true).map_err(|e| e.to_string())?;
                }
                let list = git::pristine_tar_list(src).map_err(|e| repofs::error_chain(&e))?;
                if let Some(name) = list.iter().find(|n| n.starts_with(&prefix)) {
                    git::pristine_tar_checkout(src, name, work)
                        .map_err(|e| format!("pristine-tar: {}", repofs::error_chain(&e)))?;
                    return Ok(format!("{name} from the pristine-tar branch"));
                }
                tried.push(format!("the pristine-tar branch (it has no {prefix}*)"));
            } else {
                tried.push("the pristine-tar branch (absent)".to_string());
            }
            if has_tag {
                git::fetch_ref(url, src, &tag_ref, true).map_err(|e| e.to_string())?;
                let name = format!("{prefix}gz");
                let dir_prefix = format!("{}-{upstream}", top.source);
                git::archive(src, &tag_ref, &dir_prefix, &work.join(&name))
                    .map_err(|e| e.to_string())?;
                return Ok(format!("{name} from tag {tag}"));
            }
            tried.push(format!("tag {tag} (absent)"));
        }
        Origin::Path(dir) => {
            let beside = dir.parent().unwrap_or(Path::new("/"));
            for ext in plan::ORIG_EXTENSIONS {
                let name = format!("{prefix}{ext}");
                let candidate = beside.join(&name);
                if candidate.is_file() {
                    fs_err::copy(&candidate, work.join(&name)).map_err(|e| e.to_string())?;
                    return Ok(format!("{name} from {}", beside.display()));
                }
            }
            tried.push(format!(
                "{}/{prefix}{{{}}} (absent)",
                beside.display(),
                plan::ORIG_EXTENSIONS.join(",")
            ));
        }
    }
    Err(format!(
        "no orig tarball for {} {upstream}: tried {}",
        top.source,
        tried.join(", ")
    ))
}
