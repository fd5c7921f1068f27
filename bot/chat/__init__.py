"""Chat clicks and card sync: button payloads, the one click path, the platforms' callback routes, the `im`
medium (a card in a direct message), keeping every posted card in step, and chat commands."""
