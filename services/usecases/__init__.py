"""Use cases: one function per thing a person or a clock does in the shop.

Every door (a chat command, the payment gateway's callback, a clock job) calls the same
function, so none of them opens a session, picks notices or builds dedupe keys. A use case:

- takes the shop (`services.context.ShopContext`), who is asking (`services.actors.Caller`,
  or `Actor.system()` for clocks), the already-parsed arguments, and `now` (tests pin it);
- opens its own transaction (`shop.database.write()`, or `read()` for a view), calls the
  domain functions of `services/` that take a session, which write the order/ticket events;
- queues its notices (texts in `services.notices`) in that same transaction; committing it
  wakes the outbox, no door does;
- returns a plain result (a frozen dataclass or rows) for the door to render, and refuses
  with a `services.errors.ShopError` subclass, which every door can render.
"""
