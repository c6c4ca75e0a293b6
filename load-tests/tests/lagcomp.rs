//! Lag compensation end to end in the simulation (`pwn_load_tests::duel`): a shooter that sees a
//! running target as a 150 ms round trip and a 100 ms interpolation delay make it see it (5
//! ticks late), and aims exactly at what it draws, hits as often as a shooter with no latency at
//! all with the rewind, and almost never without it. (Some shots miss whatever the latency: the
//! target turns back at the edges of its run while the shot flies.)

use pwn_load_tests::duel::duel;

#[test]
fn a_shooter_at_150_ms_hits_what_it_drew_with_the_rewind_and_misses_without() {
    let (late, shots) = (5, 40);
    let on_time = duel(0, 0, shots, false, 1);
    let with = duel(late, 8, shots, false, 1);
    let without = duel(late, 0, shots, false, 1);
    // A bound below what the shooter needs (2 of its 5 ticks) leaves the target 3 ticks on.
    let bounded = duel(late, 2, shots, false, 1);
    let all = format!("no latency {on_time:?}, with {with:?}, without {without:?}, bounded {bounded:?}");
    assert_eq!(with.shots, shots, "{all}");
    assert!(on_time.hits >= shots * 9 / 10, "the aim itself is right: {all}");
    assert!(with.hits + 1 >= on_time.hits, "the rewind gives back what latency took: {all}");
    assert!(without.hits <= shots / 10, "without it the target had run on: {all}");
    assert!(bounded.hits <= shots / 10, "{all}");
}
