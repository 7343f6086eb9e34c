"""A stand-in for the few RDKit calls the keras.io MPNN example makes (`Chem.MolFromSmiles`,
atoms' and bonds' feature getters, `SanitizeMol`, `AssignStereochemistry`,
`RDLogger.DisableLog`). RDKit is not a dependency, so a "SMILES" string stands for a random
molecule-shaped graph seeded by the string: a chain of 5-12 heavy atoms with one ring bond,
element symbols, valences, hydrogen counts, hybridizations and bond types drawn from the sets
the example featurizes. An empty string is an invalid molecule (None), as RDKit returns.

`chem(symbols, max_atoms)` gives the same namespace for other element sets and sizes (QM9's
C, N, O, F and at most 9 heavy atoms in the WGAN-graphs example), with what that example
also calls: `GetNumHeavyAtoms`, and `RWMol`/`Atom`/`BondType` to rebuild a molecule."""

from __future__ import annotations

import types
import zlib

import numpy as np

_SYMBOLS = ["C", "C", "C", "N", "O", "S", "Cl", "F"]
_HYBRIDIZATIONS = ["SP", "SP2", "SP3", "S"]
_BOND_TYPES = ["SINGLE", "DOUBLE", "AROMATIC", "TRIPLE"]


class _Named:
    def __init__(self, name):
        self.name = name


class Atom:
    def __init__(self, molecule, index, rng, symbols=_SYMBOLS):
        self._molecule, self._index = molecule, index
        self._symbol = symbols[rng.integers(len(symbols))]
        self._valence, self._hydrogens = int(rng.integers(1, 5)), int(rng.integers(0, 4))
        self._hybridization = _HYBRIDIZATIONS[rng.integers(len(_HYBRIDIZATIONS))]

    def GetIdx(self):
        return self._index

    def GetSymbol(self):
        return self._symbol

    def GetTotalValence(self):
        return self._valence

    def GetTotalNumHs(self):
        return self._hydrogens

    def GetHybridization(self):
        return _Named(self._hybridization)

    def GetNeighbors(self):
        return [self._molecule._atoms[j] for j in sorted(self._molecule._adjacent[self._index])]


class Bond:
    def __init__(self, rng):
        self._type = _BOND_TYPES[rng.integers(len(_BOND_TYPES))]
        self._conjugated = bool(rng.integers(2))

    def GetBondType(self):
        return _Named(self._type)

    def GetIsConjugated(self):
        return self._conjugated


class Molecule:
    def __init__(self, smiles, symbols=_SYMBOLS, max_atoms=12):
        rng = np.random.default_rng(zlib.crc32(smiles.encode()))
        n = int(rng.integers(5, max_atoms + 1))
        self._atoms = [Atom(self, i, rng, symbols) for i in range(n)]
        pairs = [(i, i + 1) for i in range(n - 1)] + [(0, int(rng.integers(2, n)))]
        self._bonds = {frozenset(p): Bond(rng) for p in pairs}
        self._adjacent = {i: set() for i in range(n)}
        for i, j in pairs:
            self._adjacent[i].add(j)
            self._adjacent[j].add(i)

    def GetAtoms(self):
        return list(self._atoms)

    def GetNumAtoms(self):
        return len(self._atoms)

    GetNumHeavyAtoms = GetNumAtoms

    def GetBondBetweenAtoms(self, i, j):
        return self._bonds.get(frozenset((i, j)))


class RWMol:
    """An editable molecule: atoms and bonds added one by one (`Chem.RWMol`)."""

    def __init__(self):
        self.atoms, self.bonds = [], []

    def AddAtom(self, atom):
        self.atoms.append(atom.symbol)
        return len(self.atoms) - 1

    def AddBond(self, i, j, bond_type):
        self.bonds.append((i, j, bond_type))
        return len(self.bonds)


def chem(symbols=tuple(_SYMBOLS), max_atoms=12):
    """A `Chem` namespace whose molecules draw elements from `symbols`, 5..max_atoms atoms."""
    return types.SimpleNamespace(
        MolFromSmiles=lambda smiles, sanitize=True: (
            Molecule(smiles, list(symbols), max_atoms) if smiles else None),
        SanitizeMol=lambda molecule, catchErrors=False, sanitizeOps=None: 0,
        SanitizeFlags=types.SimpleNamespace(SANITIZE_NONE=0, SANITIZE_ALL=0xFFFFFFF),
        AssignStereochemistry=lambda molecule, cleanIt=False, force=False: None,
        RWMol=RWMol,
        Atom=lambda symbol: types.SimpleNamespace(symbol=symbol),
        BondType=types.SimpleNamespace(**{name: name for name in _BOND_TYPES}),
    )


Chem = chem()
RDLogger = types.SimpleNamespace(DisableLog=lambda spec: None)
