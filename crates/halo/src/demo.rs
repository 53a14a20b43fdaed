//! `halo demo`: the seed's system in network namespaces on this machine.

pub fn demo(tour: bool) -> anyhow::Result<()> {
    let _ = tour;
    anyhow::bail!("halo demo is being built")
}
