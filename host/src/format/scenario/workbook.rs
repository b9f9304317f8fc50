//! `workbook:`: the pools (their ranges checked for overlaps), the resources (their properties
//! resolved) and the data files. Each item is the schema's type, filled by serde on its own,
//! so one bad item leaves the others read.

use super::*;

/// `workbook:`'s parts.
#[derive(Default)]
pub(super) struct Book {
    pub pools: Vec<PoolSpec>,
    pub resources: Vec<Resource>,
    pub cycles: Vec<Cycle>,
    pub data: Vec<DataSource>,
}

pub(super) fn workbook(w: &mut Walker, top: &serde_yaml::Mapping) -> Book {
    let Some(wb) = get(top, "workbook")
        .and_then(|v| w.map(v, "workbook", schema::fields::<schema::Workbook>()))
    else {
        return Book::default();
    };
    let pools = w.each::<schema::IpPool>(get(wb, "ip_pools"), "workbook.ip_pools");
    let resources = w.each::<schema::Resource>(get(wb, "resources"), "workbook.resources");
    let data = w.items::<schema::DataFile>(get(wb, "data"), "workbook.data");
    let mut resources = resources
        .into_iter()
        .map(|(i, r)| match r {
            Ok(r) => resource(w, i, r),
            // Kept by its id (the scenario is refused): what names it is not a problem too.
            Err(id) => Resource {
                id,
                kind: None,
                properties: BTreeMap::new(),
            },
        })
        .collect::<Vec<_>>();
    let cycles = resolve_properties(w, &mut resources);
    Book {
        pools: ip_pools(w, pools),
        resources,
        cycles,
        data: data::data_sources(w, data),
    }
}

/// `workbook.ip_pools`: ids unique, ranges valid and apart.
fn ip_pools(w: &mut Walker, pools: Vec<(usize, Result<schema::IpPool, String>)>) -> Vec<PoolSpec> {
    let mut out: Vec<PoolSpec> = Vec::new();
    let mut all_ranges = Vec::new();
    for (i, m) in pools {
        let m = match m {
            Ok(m) => m,
            // Kept by its id (the scenario is refused): what names it is not a problem too.
            Err(id) => {
                out.push(PoolSpec {
                    name: id.clone(),
                    id,
                    ranges: Vec::new(),
                    strategy: Strategy::Sequential,
                    segment: None,
                    reserve_network_broadcast: false,
                });
                continue;
            }
        };
        let path = format!("workbook.ip_pools[{i}]");
        let id = m.id.text();
        let reserve = m.reserve_network_broadcast.unwrap_or(false);
        let rpath = join(&path, "ranges");
        if m.ranges.is_empty() {
            w.problem(&rpath, "at least one range is required");
        }
        let ranges: Vec<String> = m.ranges.iter().map(schema::Text::text).collect();
        for (j, text) in ranges.iter().enumerate() {
            let rp = format!("{rpath}[{j}]");
            match check_cidr(text, reserve) {
                Ok((first, last)) => all_ranges.push((first, last, i, rp, text.clone())),
                Err(e) => w.problem(&rp, e),
            }
        }
        let spath = join(&path, "allocation_strategy");
        let strategy = match opt_text(&m.allocation_strategy).as_deref() {
            None | Some("sequential") => Strategy::Sequential,
            Some("round_robin") => Strategy::RoundRobin,
            Some("random") => Strategy::Random,
            Some(other) => {
                w.problem(
                    &spath,
                    format!("unknown strategy {other:?} (sequential, round_robin, random)"),
                );
                Strategy::Sequential
            }
        };
        if out.iter().any(|p| p.id == id) {
            w.problem(&join(&path, "id"), format!("duplicate pool id {id:?}"));
        }
        out.push(PoolSpec {
            name: m
                .name
                .as_ref()
                .map_or_else(|| id.clone(), schema::Text::text),
            id,
            ranges,
            strategy,
            segment: m.segment.map(|n| n.min(u64::from(u32::MAX)) as u32),
            reserve_network_broadcast: reserve,
        });
    }
    check_overlaps(w, &mut all_ranges);
    out
}

/// `workbook.resources[i]`: an id that is not `user` or `tenant`, and its properties.
fn resource(w: &mut Walker, i: usize, r: schema::Resource) -> Resource {
    let id = r.id.text();
    if id == "user" || id == "tenant" {
        w.problem(
            &format!("workbook.resources[{i}].id"),
            format!("\"{id}\" is reserved for {{{{{id}.*}}}}"),
        );
    }
    Resource {
        id,
        kind: opt_text(&r.kind),
        properties: r
            .properties
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.text()))
            .collect(),
    }
}
