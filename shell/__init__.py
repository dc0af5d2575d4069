"""The shell: the Quart app and server wiring, the CLI, operations (doctor, backup, simulate)
and reports. It sits on top of the rooms (adapters, handlers, bot, training, nlp) and may
import any of them; none of them imports it."""
