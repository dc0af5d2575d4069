"""Operations: doctor, backup and restore, the simulated city."""
